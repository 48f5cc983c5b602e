"""The JAX engine behind the seam: traced steps that train and evaluate, a state that round-trips
(dropout seed states included), mirrored over two CPU devices equal to one device on the combined
batch, fp16 with dynamic loss scaling, clear errors for missing devices, and no TensorFlow.

Everything runs in one process of its own (tests/mlpf/train/jax_check.py): this process's Keras
has another backend, and JAX fixes its CPU devices when it starts.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.worker_results import run_workers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def found() -> dict:
    pytest.importorskip("jax", reason="the jax extra is not installed")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    r, found = run_workers([sys.executable, "-m", "tests.mlpf.train.jax_check"], env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return found["jax_check"]


def test_the_engine_says_what_it_is(found):
    assert found["backend"] == {
        "name": "jax",
        "version": found["software"]["jax"],
        "jaxlib": found["software"]["jaxlib"],
        "keras": found["software"]["keras"],
        "compile": "jax.jit",
    }
    assert (found["software"]["cuda"], found["software"]["cudnn"]) == (None, None)  # a CPU jaxlib
    assert [d["type"] for d in found["devices"]] == ["cpu", "cpu"]
    assert found["parameters"] == [7907, 800]
    assert found["tensorflow_imported"] is False  # seeding included (keras.utils.set_random_seed would)
    # train.fp32_matmul, set before jax.jit traces the steps (JAX's own default is neither)
    assert (found["matmul_precision"], found["matmul_precision_tf32"]) == ("highest", "tensorfloat32")


def test_tracing_compiles_without_training_and_the_steps_reuse_it(found):
    assert found["trace_changed_nothing"]
    assert found["compiled_shapes"] == 1


def test_train_steps_train_and_eval_steps_change_nothing(found):
    losses = found["losses"]
    assert found["finite"]
    assert losses[0] == pytest.approx(found["eval_before"], rel=1e-6)  # dropout 0: the same forward pass
    assert losses[0] > losses[1] > losses[2] > found["eval_after"]
    assert found["weights_moved"] > 0
    assert found["eval_changed_nothing"]
    # Host numbers the loop counts: events (the all-padding one too), padded length, real elements.
    assert found["parts"] == [{"events": 4, "padded_length": 32, "real_elements": 58}]


def test_mirrored_over_two_cpus_equals_one_device_on_the_combined_batch(found):
    assert found["mirrored_weight_difference"] < 1e-4  # float32 summation order, nothing else
    for a, b in zip(found["mirrored_losses"], found["losses"]):
        assert a == pytest.approx(b, rel=1e-5)
    assert found["mirrored_parts"] == [
        {"events": 2, "padded_length": 32, "real_elements": 27},
        {"events": 2, "padded_length": 32, "real_elements": 31},
    ]
    # Three events over two replicas: an empty event fills the second replica's share, uncounted.
    assert [p["events"] for p in found["odd_parts"]] == [2, 1]
    assert found["mirrored_eval"] == pytest.approx(found["eval_after"], rel=1e-5)  # the whole batch on each device


def test_state_round_trips_with_the_dropout_seed_states(found):
    once, twice, again, again_twice = found["reloaded_losses"]
    assert once != twice  # dropout masks (and weights) moved on
    assert (again, again_twice) == (once, twice)
    assert found["state_length"] == found["variables"]
    assert found["short_state_error"].startswith("holds 1 variables, the model and optimizer ")


def test_fp16_trains_with_dynamic_loss_scaling(found):
    assert found["fp16_optimizer"] == "LossScaleOptimizer"
    # The first step's float16 gradients overflow at the initial scale (2^15): the update is
    # skipped and the scale halved; then the steps train.
    assert found["fp16_losses"][0] == found["fp16_losses"][1]
    assert found["fp16_final_scale"] == found["fp16_initial_scale"] / 2
    assert found["fp16_losses"][-1] < found["fp16_losses"][0]
    assert found["fp16_weights_moved"] > 0


def test_too_few_devices_are_a_clear_error(found):
    gpu, cpus = found["missing_devices"]
    assert gpu == "JAX sees 0 GPU device(s), 1 needed"
    assert cpus.startswith("JAX sees 2 CPU device(s), 4 needed")
