"""The TensorFlow engine behind the seam: its train step is the plain gradient step from the
NumPy-drawn initial weights on NumPy batches, its results are host numbers, its state round-trips,
it says how it runs, and the mirrored step refuses jit_compile (it cannot honour it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from hepbench.core.errors import UsageError
from hepbench.mlpf.config import Config, ModelConfig, TrainConfig
from hepbench.mlpf.engines.base import Part
from hepbench.mlpf.engines.tensorflow import TensorFlowEngine
from hepbench.mlpf.model.init import initial_values
from hepbench.mlpf.model.losses import mlpf_losses
from hepbench.mlpf.model.mlpf import build_model
from hepbench.mlpf.run.plan import RunOptions, plan_mirrored
from hepbench.mlpf.train.optimizer import make_optimizer

SMALL = ModelConfig(
    bin_size=16,
    distance_dim=8,
    ffn_dist_hidden_dim=8,
    output_dim=16,
    decoder_hidden_dim=16,
    num_graph_layers_id=1,
    num_graph_layers_reg=1,
)
CFG = TrainConfig(learning_rate=3e-3, seed=3)
N_REAL = [12, 5, 16, 0]  # an all-padding event too


@pytest.fixture(scope="module")
def batch(random_event):
    rng = np.random.default_rng(2)
    X = np.zeros((len(N_REAL), 16, 12), np.float32)
    y = np.zeros((len(N_REAL), 16, 7), np.float32)
    for i, n in enumerate(N_REAL):
        e = random_event(rng, n)
        X[i, :n], y[i, :n] = e.X, e.ygen
    return {"X": X, "y": y, "n_elements": np.array(N_REAL, np.int32)}


def plain_steps(batch, steps: int):
    """The textbook step, eagerly: loss, tape, gradients, the optimizer recipe's update."""
    keras.utils.set_random_seed(CFG.seed)
    model = build_model(SMALL)
    for v, a in zip(model.variables, initial_values(model, CFG.seed)):
        v.assign(a)
    optimizer = make_optimizer(CFG)
    optimizer.build(model.trainable_variables)
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = mlpf_losses(batch["X"], batch["y"], model(batch["X"], training=True), CFG.loss_weights)["loss"]
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        losses.append(float(loss))
    return model, losses


def built_engine(cfg: TrainConfig = CFG) -> TensorFlowEngine:
    engine = TensorFlowEngine()  # the test process is configured already: build only
    engine.build(SMALL, cfg)
    return engine


def test_the_train_step_is_the_plain_gradient_step(batch):
    model, expected = plain_steps(batch, 3)
    engine = built_engine()
    results = [engine.train_step(batch) for _ in range(3)]
    np.testing.assert_allclose([r.loss for r in results], expected, rtol=1e-5)
    # Adam moves every weight by about the learning rate (3e-3) per step; graph and eager float32
    # differ only in summation order, which near-zero gradients amplify a little.
    for a, b in zip(engine.model.trainable_variables, model.trainable_variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-4)
    # Host numbers the loop counts: real events and elements, padded slots (4 events x 16).
    assert results[0].parts == (Part(events=4, padded_length=16, real_elements=33),)
    assert (results[0].events, results[0].real_elements, results[0].padded_elements) == (4, 33, 64)
    assert isinstance(results[0].loss, float)


def test_the_engine_starts_from_the_numpy_drawn_weights_and_says_how_it_runs():
    engine = built_engine()
    assert all(np.array_equal(a, b) for a, b in zip(engine.state(), initial_values(engine.model, CFG.seed)))
    assert engine.backend() == {
        "name": "tensorflow",
        "version": tf.__version__,
        "keras": keras.__version__,
        "compile": "tf.function",
    }
    assert built_engine(dataclasses.replace(CFG, jit_compile=True)).backend()["compile"] == "tf.function+xla"


def test_train_fp32_matmul_sets_tensorflows_tf32_switch():
    # TensorFlow's own default is TF32 on: "highest" must turn it off before the steps are traced.
    built_engine(dataclasses.replace(CFG, fp32_matmul="tf32"))
    assert tf.config.experimental.tensor_float_32_execution_enabled()
    built_engine()
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


def test_the_eval_step_is_inference_and_changes_nothing(batch):
    engine = built_engine()
    before = engine.state()
    result = engine.eval_step(batch)
    expected = mlpf_losses(batch["X"], batch["y"], engine.model(batch["X"], training=False), CFG.loss_weights)
    assert result.loss == pytest.approx(float(expected["loss"]), rel=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, engine.state()))


def test_state_holds_model_optimizer_and_dropout_seed_states_and_round_trips(batch):
    engine = TensorFlowEngine()
    engine.build(dataclasses.replace(SMALL, dropout=0.3), CFG)
    state = engine.state()
    assert len(state) == len(engine.model.variables) + len(engine.optimizer.variables)
    first = engine.train_step(batch).loss  # dropout draws masks: the seed states move on
    engine.load_state(state)
    assert engine.train_step(batch).loss == first  # same weights, optimizer state and dropout masks
    with pytest.raises(ValueError, match=f"holds 1 variables, the model and optimizer {len(state)}"):
        engine.load_state(state[:1])


def test_the_mirrored_engine_refuses_jit_compile():
    engine = TensorFlowEngine(kind="mirrored", device="cpu", replicas=1)
    with pytest.raises(UsageError, match=r"train\.jit_compile=true is not supported with the mirrored strategy"):
        engine.build(SMALL, dataclasses.replace(CFG, jit_compile=True))


def test_hepbench_run_refuses_mirrored_with_jit_compile_before_starting_anything(tmp_path):
    cfg = Config(train=TrainConfig(jit_compile=True))
    options = RunOptions(config=cfg, data_dir=Path("unused"), results_dir=tmp_path, strategy="mirrored", replicas=2)
    with pytest.raises(UsageError, match=r"train\.jit_compile=true is not supported with --strategy mirrored"):
        plan_mirrored(options, "cpu", [], [0, 1])
    plan_mirrored(dataclasses.replace(options, config=Config()), "cpu", [], [0, 1])  # without XLA: planned


def test_the_single_step_honours_jit_compile(batch):
    engine = built_engine(dataclasses.replace(CFG, jit_compile=True))
    assert engine._train._step._jit_compile is True
    _, expected = plain_steps(batch, 2)
    np.testing.assert_allclose([engine.train_step(batch).loss for _ in range(2)], expected, rtol=1e-3)


@pytest.mark.parametrize(
    "kind, replicas, device, message",
    [
        ("single", 2, "cpu", "2 replicas need the mirrored kind, not 'single'"),
        ("mirrored", 2, None, "the mirrored kind needs device cpu or gpu, not None"),
        ("fast", 1, "cpu", "engine kind must be one of .*, not 'fast'"),
    ],
)
def test_impossible_engines_are_refused(kind, replicas, device, message):
    with pytest.raises(ValueError, match=message):
        TensorFlowEngine(kind=kind, device=device, replicas=replicas)


@pytest.mark.slow  # traces a mirrored step (tens of seconds on 2 cores)
def test_the_mirrored_step_keeps_its_traced_function_across_datasets(batch):
    # The loop asks for train batches twice: the pipeline's, then all-padding ones of every shape
    # it warms. The second dataset must not replace the step traced on the first.
    from hepbench.mlpf.train.loop import zero_batch

    engine = TensorFlowEngine(kind="mirrored", device="cpu", replicas=1)
    engine.configure()
    engine.build(SMALL, CFG)
    first = next(engine.train_batches([batch]))
    engine.trace_train(first)
    traced = engine._train._step
    (padding,) = engine.train_batches([zero_batch(2, 48)])
    assert engine._train._step is traced
    assert engine.train_step(padding).loss == 0.0  # another padded length, the same dynamic-shape step
    assert engine.train_step(first).parts == (Part(events=4, padded_length=16, real_elements=33),)
