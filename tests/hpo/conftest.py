"""Shared by the hpo tests: a tiny model (its data set, `built`: tests/conftest.py), a small search space,
and one local Ray instance per module (starting Ray costs seconds)."""

from __future__ import annotations

import pytest

# tests/conftest.py's tiny model with one-layer output heads: a trial traces its steps in a few seconds.
TINY_MODEL = """
model: {bin_size: 16, distance_dim: 8, ffn_dist_hidden_dim: 8, output_dim: 16, decoder_hidden_dim: 8,
        num_graph_layers_id: 1, num_graph_layers_reg: 1, id_num_layers: 1, charge_num_layers: 1,
        pt_num_layers: 1, eta_num_layers: 1, phi_num_layers: 1, energy_num_layers: 1}
data: {max_elements: 64}
"""

# Small corners of the study's space, so that a trial sets up in seconds.
TINY_SPACE = """
num_graph_layers_id:  {sampler: quniform, low: 0, high: 1, q: 1}
num_graph_layers_reg: {sampler: quniform, low: 0, high: 1, q: 1}
bin_size:             {sampler: choice, values: [16]}
output_dim:           {sampler: choice, values: [8, 16]}
lr:                   {sampler: loguniform, low: 1.0e-4, high: 3.0e-2}
"""


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny-hpo.yaml"
    path.write_text(TINY_MODEL)
    return path


@pytest.fixture(scope="session")
def tiny_space(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(TINY_SPACE)
    return path


@pytest.fixture(scope="module")
def ray_local():
    """One CPU: trials run one at a time, so the schedulers' decisions do not depend on timing."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
