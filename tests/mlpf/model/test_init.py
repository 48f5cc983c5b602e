"""NumPy-drawn initial weights: every variable of the model known and drawn from its initializer's
distribution, reproducible per seed, independent of the other weights, refused when unknown.
(That they are the same on every backend: tests/mlpf/train/test_parity.py.)"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pytest

from hepbench.mlpf.config import ModelConfig
from hepbench.mlpf.model.init import UnknownInitializer, assign_initial_weights, initial_values
from hepbench.mlpf.model.mlpf import build_model

SMALL = ModelConfig(
    bin_size=16,
    distance_dim=8,
    ffn_dist_hidden_dim=8,
    output_dim=16,
    decoder_hidden_dim=16,
    num_graph_layers_id=1,
    num_graph_layers_reg=1,
)


@pytest.fixture(scope="module")
def default_model():
    return build_model(ModelConfig())


def by_path(model, values) -> dict:
    return {v.path: a for v, a in zip(model.variables, values)}


def test_every_variable_of_the_default_model_is_drawn_from_its_initializer(default_model):
    values = initial_values(default_model, seed=42)
    assert len(values) == len(default_model.variables) == 104  # dropout 0: no seed states
    for v, a in zip(default_model.variables, values):
        assert a.shape == tuple(v.shape) and a.dtype == np.dtype(v.dtype), v.path
    drawn = by_path(default_model, values)
    kernel = drawn["pfnet_dense/cg_id_0/ffn_dist/dense_0/kernel"]  # Dense: glorot_uniform
    limit = math.sqrt(6 / sum(kernel.shape))
    assert np.abs(kernel).max() <= limit and np.std(kernel) == pytest.approx(limit / math.sqrt(3), rel=0.05)
    assert not drawn["pfnet_dense/cg_id_0/ffn_dist/dense_0/bias"].any()
    assert np.all(drawn["pfnet_dense/output_decoding/layernorm_id/gamma"] == 1)
    assert not drawn["pfnet_dense/output_decoding/layernorm_id/beta"].any()
    for path in ("pfnet_dense/cg_id_0/msg_0/theta", "pfnet_dense/cg_id_0/lsh_projections"):  # N(0, 0.05)
        assert np.std(drawn[path]) == pytest.approx(0.05, rel=0.05) and abs(np.mean(drawn[path])) < 0.005


def test_assigned_values_are_the_drawn_ones_and_reproducible_per_seed():
    model = build_model(SMALL)
    assign_initial_weights(model, 5)
    again, other = initial_values(model, 5), initial_values(model, 6)
    assert all(np.array_equal(np.asarray(v), a) for v, a in zip(model.variables, again))
    kernels = [i for i, v in enumerate(model.variables) if v.path.endswith("kernel")]
    assert not any(np.array_equal(again[i], other[i]) for i in kernels)


def test_a_weight_does_not_depend_on_the_other_variables():
    plain = build_model(SMALL)
    with_dropout = build_model(dataclasses.replace(SMALL, dropout=0.3))  # adds dropout seed states
    states = [v for v in with_dropout.variables if "seed_generator_state" in v.path]
    assert states
    drawn = by_path(with_dropout, initial_values(with_dropout, 1))
    for v, a in zip(plain.variables, initial_values(plain, 1)):
        assert np.array_equal(drawn[v.path], a), v.path
    seeds = [drawn[s.path] for s in states]
    assert all(s[1] == 0 and 1 <= s[0] < 10**9 for s in seeds) and len({int(s[0]) for s in seeds}) == len(seeds)


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            keras.layers.Dense(2, kernel_initializer="he_normal", name="dense_he"),
            "dense_he/kernel: no NumPy draw for the initializer HeNormal",
        ),
        (keras.layers.BatchNormalization(name="norm"), "norm/gamma: a variable of no layer whose initializer is known"),
    ],
)
def test_an_unknown_initializer_or_variable_is_refused_by_name(layer, message):
    model = keras.Sequential([keras.Input((3,)), layer])
    with pytest.raises(UnknownInitializer, match=message):
        initial_values(model, 0)
