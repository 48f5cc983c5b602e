"""A small built data set and a tiny model configuration, so that real benchmark runs take seconds."""
from __future__ import annotations

import numpy as np
import pytest

from hepbench.mlpf.data.delphes import write_file
from hepbench.mlpf.data.format import published_name
from tests.conftest import random_event

TINY = """
model: {bin_size: 16, distance_dim: 8, ffn_dist_hidden_dim: 8, output_dim: 16, decoder_hidden_dim: 16,
        num_graph_layers_id: 1, num_graph_layers_reg: 1}
data: {max_elements: 64}
bench: {windows: 2, warmup_steps: 1, cpu_events_per_window: 4, cpu_validation_events: 2}
"""


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A built delphes_pf with 12 train and 4 test events."""
    from hepbench.mlpf.data.tfds_builder import build

    rng = np.random.default_rng(7)
    manual = tmp_path_factory.mktemp("manual")
    write_file(manual / published_name("ttbar", 0, 0), [random_event(rng, int(n)) for n in rng.integers(5, 60, 12)])
    write_file(manual / published_name("qcd", 10, 0), [random_event(rng, int(n)) for n in rng.integers(5, 60, 4)])
    data_dir = tmp_path_factory.mktemp("tfds")
    build(manual, data_dir)
    return data_dir


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(TINY)
    return path
