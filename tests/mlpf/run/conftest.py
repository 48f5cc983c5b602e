"""`hepbench run` in its own process, as a user runs it (the data set and config: tests/conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="session")
def hepbench_run():
    """hepbench_run(*args, **kw): the CompletedProcess of `python -m hepbench run ARGS` (text output
    captured; kw go to subprocess.run)."""

    def run(*args, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hepbench", "run", *map(str, args)],
                              capture_output=True, text=True, env=ENV, **kw)

    return run
