"""PFNetDense: reference parameter counts, masking, numerical sanity, determinism, precisions."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from hepbench.core.errors import UsageError
from hepbench.mlpf.config import ModelConfig, TrainConfig
from hepbench.mlpf.engines.tensorflow_steps import TrainStep
from hepbench.mlpf.model.flops import forward_flops, training_flops
from hepbench.mlpf.model.layers import CombinedGraphLayer, FeedForward, GHConvDense
from hepbench.mlpf.model.mlpf import PFNetDense, build_model, parameter_counts
from hepbench.mlpf.train.optimizer import make_optimizer

# A small model of the same structure, so that these tests run in seconds.
SMALL = ModelConfig(
    bin_size=16,
    distance_dim=8,
    ffn_dist_hidden_dim=8,
    output_dim=16,
    decoder_hidden_dim=16,
    num_graph_layers_id=2,
    num_graph_layers_reg=2,
)


@pytest.fixture(scope="module")
def batch(events_batch):
    """The training batch: two events of 12 and 16 elements, padded to 16."""
    return events_batch([12, 16], 16, seed=4)


def test_reference_parameter_counts():
    assert parameter_counts(build_model(ModelConfig())) == (3_292_489, 38_400)
    small = ModelConfig(num_graph_layers_id=1, num_graph_layers_reg=1, output_dim=128)
    assert parameter_counts(build_model(small))[0] == 656_713


def test_bin_size_does_not_change_the_parameter_count():
    assert parameter_counts(build_model(dataclasses.replace(SMALL, bin_size=8))) == parameter_counts(build_model(SMALL))


def test_flop_estimate_matches_the_profiled_reference():
    # TensorFlow's profiler counts 61.4 GFLOP per forward pass of a 6400-element event (spec).
    assert forward_flops(ModelConfig(), 6400) / 1e9 == pytest.approx(61.4, rel=0.02)
    assert training_flops(ModelConfig(), 6400) == 3 * forward_flops(ModelConfig(), 6400)
    # Padding to the next bin: 4,700 elements cost what 5,120 do, less than 6,400.
    assert forward_flops(ModelConfig(), 4700) == forward_flops(ModelConfig(), 5120) < forward_flops(ModelConfig(), 6400)


def test_padding_does_not_change_real_outputs(events_batch):
    keras.utils.set_random_seed(3)
    model = build_model(SMALL)
    X, _ = events_batch([13], 16)
    wide = np.concatenate([X, np.zeros((1, 16, 12), np.float32)], axis=1)  # one more bin of padding
    a, b = model(X), model(wide)
    for name in ("cls", "charge", "pt", "eta", "sin_phi", "cos_phi", "energy"):
        np.testing.assert_allclose(np.asarray(a[name])[:, :13], np.asarray(b[name])[:, :13], rtol=1e-5, atol=1e-6)
        assert not np.asarray(b[name])[:, 13:].any()  # padded elements predict nothing


def test_batching_with_other_events_does_not_change_outputs(events_batch):
    keras.utils.set_random_seed(3)
    model = build_model(SMALL)
    X, _ = events_batch([10, 30], 32)
    together = model(X)
    alone = model(X[:1, :16])
    np.testing.assert_allclose(
        np.asarray(together["energy"])[0, :10], np.asarray(alone["energy"])[0, :10], rtol=1e-5, atol=1e-6
    )


class Trainer:
    """One traced training step, reused across tests (tracing costs seconds, steps milliseconds)."""

    def __init__(self, cfg_train: TrainConfig, batch):
        self.batch = batch
        keras.utils.set_random_seed(0)
        self.model = build_model(SMALL)
        self.step = TrainStep(self.model, cfg_train)
        self.initial = [np.array(v) for v in self.model.variables + self.step.optimizer.variables]

    def reset(self) -> None:
        for v, value in zip(self.model.variables + self.step.optimizer.variables, self.initial):
            v.assign(value)

    def losses(self, steps: int, X=None, y=None) -> list[float]:
        self.reset()
        if X is None:
            X, y = self.batch
        return [float(self.step(X, y)["loss"]) for _ in range(steps)]


@pytest.fixture(scope="module")
def trainer(batch):
    return Trainer(TrainConfig(learning_rate=3e-3), batch)


@pytest.mark.parametrize("n_real", [0, 1])
def test_outputs_are_finite_for_empty_and_single_element_events(trainer, events_batch, n_real):
    X, y = events_batch([n_real], 16)
    trainer.reset()
    for value in trainer.model(X).values():
        assert np.all(np.isfinite(np.asarray(value)))
    assert all(np.isfinite(trainer.losses(2, X, y)))


def test_loss_falls_by_half_on_a_tiny_batch(trainer):
    losses = trainer.losses(150)
    assert min(losses[-10:]) < 0.5 * losses[0]


def test_same_seed_same_losses_on_cpu(trainer):
    assert trainer.losses(5) == trainer.losses(5)
    # The seed fixes the initial weights: a model built again with seed 0 starts from the same ones.
    keras.utils.set_random_seed(0)
    again = build_model(SMALL)
    for a, b in zip(again.variables, trainer.initial):
        np.testing.assert_array_equal(np.array(a), b)
    keras.utils.set_random_seed(1)
    other = build_model(SMALL)
    assert not all(np.array_equal(np.array(a), b) for a, b in zip(other.variables, trainer.initial))


def _train(cfg_model, cfg_train, steps, batch, seed=0) -> list[float]:
    keras.utils.set_random_seed(seed)
    model = build_model(cfg_model, cfg_train.precision)
    X, y = batch
    step = TrainStep(model, cfg_train)
    return [float(step(X, y)["loss"]) for _ in range(steps)]


def assert_it_trains(cfg_model, cfg_train, batch, steps=5) -> None:
    """Finite losses that fall, and every trainable weight moved: a step that computed a finite loss
    but applied nothing (fp16 loss scaling skipping every update, say) fails here."""
    keras.utils.set_random_seed(0)
    model = build_model(cfg_model, cfg_train.precision)
    initial = [np.array(w) for w in model.trainable_weights]
    step = TrainStep(model, cfg_train)
    losses = [float(step(*batch)["loss"]) for _ in range(steps)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    moved = [not np.array_equal(np.array(w), before) for w, before in zip(model.trainable_weights, initial)]
    assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])  # fp32: the trainer fixture
def test_every_precision_trains(batch, precision):
    assert_it_trains(SMALL, TrainConfig(precision=precision, learning_rate=1e-3), batch)


def test_xla_step_matches_the_plain_step(trainer, batch):
    xla = _train(SMALL, TrainConfig(learning_rate=3e-3, jit_compile=True), steps=2, batch=batch)
    np.testing.assert_allclose(xla, trainer.losses(2), rtol=1e-3)


def test_dropout_and_additive_mode_train(batch):
    cfg = dataclasses.replace(SMALL, dropout=0.2, node_update_mode="additive")
    model = build_model(cfg)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in _all_layers(model))
    assert_it_trains(cfg, TrainConfig(learning_rate=1e-3), batch)


@pytest.mark.parametrize("mode", ["concat", "additive"])
def test_zero_graph_layers_train(batch, mode):
    # The study's search space has 0 graph layers: the decoder then sees the encoded input only.
    cfg = dataclasses.replace(SMALL, num_graph_layers_id=0, num_graph_layers_reg=0, node_update_mode=mode)
    model = build_model(cfg)
    assert not any(isinstance(layer, CombinedGraphLayer) for layer in _all_layers(model))
    assert parameter_counts(model)[0] < parameter_counts(build_model(SMALL))[0]
    assert forward_flops(cfg, 64) < forward_flops(SMALL, 64)
    assert_it_trains(cfg, TrainConfig(learning_rate=1e-3), batch)


def _all_layers(layer):
    yield layer
    for sub in getattr(layer, "_layers", []):
        yield from _all_layers(sub)


def test_optimizer_choice():
    assert isinstance(make_optimizer(TrainConfig()), keras.optimizers.Adam)
    assert isinstance(make_optimizer(TrainConfig(weight_decay=1e-4)), keras.optimizers.AdamW)
    assert isinstance(make_optimizer(TrainConfig(precision="fp16")), keras.optimizers.LossScaleOptimizer)


def test_lsh_projection_is_frozen(trainer):
    frozen = trainer.model.non_trainable_weights
    assert len(frozen) == 4 and all("lsh_projections" in w.path for w in frozen)
    trainer.reset()
    before = [np.array(w) for w in frozen]
    trainable_before = [np.array(w) for w in trainer.model.trainable_weights]
    trainer.losses(2)
    for b, w in zip(before, frozen):
        np.testing.assert_array_equal(b, np.array(w))
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(trainable_before, trainer.model.trainable_weights))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bin_size": 0}, "model.bin_size must be positive, not 0"),
        ({"bin_size": -640}, "model.bin_size must be positive"),
        ({"dropout": -0.1}, "model.dropout must be in"),
        ({"output_dim": 0}, "model.output_dim must be positive, not 0"),
    ],
)
def test_invalid_hyperparameters(change, message):
    with pytest.raises(UsageError, match=message):
        dataclasses.replace(ModelConfig(), **change)


def test_unknown_precision():
    with pytest.raises(UsageError, match="train.precision must be one of"):
        TrainConfig(precision="int8")


@pytest.mark.parametrize(
    "layer",
    [
        FeedForward(4, 8, 2, dim_decrease=True, dropout=0.1),
        GHConvDense(8, normalize_degrees=False),
        CombinedGraphLayer(bin_size=8, distance_dim=4, output_dim=8),
    ],
)
def test_layers_round_trip_their_config(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_model_config_round_trip():
    model = build_model(SMALL)
    clone = PFNetDense.from_config(model.get_config())
    assert clone.config == SMALL


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_forward_is_finite_on_realistic_events(precision):
    # Generated events carry energies of hundreds of GeV: squared distances overflow float16 and
    # CPUs flush its subnormals, both of which once turned the outputs into NaN.
    from hepbench.mlpf.data.synth import file_rng, generate_event

    event = generate_event(file_rng(0, "ttbar", 0), "ttbar")
    n = -(-event.num_elements // SMALL.bin_size) * SMALL.bin_size
    X = np.zeros((1, n, 12), np.float32)
    X[0, : event.num_elements] = event.X
    keras.utils.set_random_seed(0)
    out = build_model(SMALL, precision)(X)
    for name, value in out.items():
        assert np.all(np.isfinite(np.asarray(value))), name
