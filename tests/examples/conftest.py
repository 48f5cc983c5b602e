"""The tiny built data set and model configuration of tests/run, for the example job scripts."""
from tests.mlpf.run.conftest import built, tiny_config

__all__ = ["built", "tiny_config"]  # fixtures: pytest finds them here by name
