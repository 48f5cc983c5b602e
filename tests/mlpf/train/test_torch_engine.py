"""The PyTorch engine behind the seam: its train step is the plain gradient step, its results are host
numbers, its state round-trips, bf16 and fp16 train, a CPU run stays on the CPU whatever Keras's
default device, torch.compile traces without training, and two DDP ranks equal one process on the
combined batch.

Keras picks its backend once per process and this test process has TensorFlow's, so the scenarios
run in a child process on the torch backend (`python -m tests.mlpf.train.test_torch_engine NAME...`
reports one JSON object, a result per scenario, in a file: tests/worker_results.py) and the tests here
check what they report.
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest

from tests.worker_results import report, run_workers

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                reason="PyTorch is the torch extra: pip install 'hepbench[torch]'")

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
N_REAL = [12, 5, 16, 0]  # an all-padding event too
LENGTH = 16


def run_scenarios(*names: str, env: dict | None = None, timeout: int = 600) -> dict:
    r, found = run_workers([sys.executable, "-m", "tests.mlpf.train.test_torch_engine", *names], cwd=ROOT,
                           env={**ENV, **(env or {})}, timeout=timeout)
    assert r.returncode == 0, r.stderr[-4000:]
    return found["scenarios"]


@pytest.fixture(scope="module")
def results() -> dict:
    return run_scenarios("steps", "eval", "state", "precision", "refusals", "device", "fp32_matmul")


def test_the_train_step_is_the_plain_gradient_step(results):
    r = results["steps"]
    assert r["losses"] == pytest.approx(r["plain_losses"], rel=1e-5)
    # The same operations in the same order: only thread scheduling could make them differ.
    assert r["max_weight_difference"] < 1e-6
    assert r["changed"] == r["trainable"]  # Adam moves every weight
    # Host numbers the loop counts: real events and elements, padded slots (4 events x 16).
    assert r["parts"] == [{"events": 4, "padded_length": 16, "real_elements": 33}]
    assert (r["events"], r["real_elements"], r["padded_elements"]) == (4, 33, 64)
    assert r["loss_is_float"]


def test_the_engine_says_what_ran(results):
    r = results["steps"]
    assert r["backend"] == {"name": "torch", "version": r["software"]["torch"], "keras": r["software"]["keras"],
                            "compile": "eager"}
    assert set(r["software"]) == {"torch", "keras", "cuda", "cudnn"}
    assert r["devices"] == [{"type": "cpu", "name": r["devices"][0]["name"]}]
    assert r["peak_device_memory"] is None  # a CPU run


def test_the_eval_step_is_inference_and_changes_nothing(results):
    r = results["eval"]
    assert r["loss"] == pytest.approx(r["expected"], rel=1e-6)
    assert r["state_unchanged"]
    assert r["parts"] == [{"events": 4, "padded_length": 16, "real_elements": 33}]


def test_the_state_round_trips_in_tensorflows_order(results):
    r = results["state"]
    # model.variables first, then the optimizer's, then torch's CPU generator (dropout's masks).
    assert r["count"] == r["model_variables"] + r["optimizer_variables"] + 1
    assert r["first_optimizer_variable"] == "adam/iteration"
    # A fresh engine (other initial weights, another generator state) given the state continues
    # exactly where the first one was, dropout masks included.
    assert r["resumed_loss"] == r["continued_loss"]
    assert r["max_difference_after"] == 0.0
    assert r["too_few"] == (f"holds {r['count'] - 1} arrays, the engine's state {r['count']} ({r['count'] - 1} "
                            f"model and optimizer variables, 1 random generator state(s))")
    assert r["wrong_shape"].startswith("variable 0 (pfnet_dense/") and "shape (1,)" in r["wrong_shape"]


@pytest.mark.parametrize("precision, compute, optimizer", [
    ("bf16", "bfloat16", "Adam"),
    ("fp16", "float16", "LossScaleOptimizer"),  # dynamic loss scaling, as on TensorFlow
])
def test_mixed_precision_trains(results, precision, compute, optimizer):
    r = results["precision"][precision]
    assert r["compute_dtype"] == compute and r["optimizer"] == optimizer
    assert all(math.isfinite(v) for v in [*r["losses"], r["eval_loss"]])
    # fp16 skips its first updates: the initial loss scale (2^15) overflows the float16 gradients,
    # and LossScaleOptimizer halves it each time until they are finite.
    assert r["losses"][-1] < r["losses"][0]
    assert r["changed"] == r["trainable"]


def test_wrong_engines_are_refused(results):
    r = results["refusals"]
    assert r["mirrored"] == "engine kind must be one of single, ddp, not 'mirrored'"
    assert r["replicas"].startswith("the torch engine runs on one device per process, not 2 replicas")
    assert r["device"] == "device must be cpu, gpu or None, not 'tpu'"
    assert r["threads"] == "threads must be >= 1, not 0"
    assert r["ddp_without_group"].startswith("the ddp engine needs an initialised torch.distributed process group")
    assert r["compile_backend"].startswith("train.compile_backend='no-such-backend' is not a torch.compile backend "
                                           "of this PyTorch; it has aot_eager, ")
    assert "inductor" in r["compile_backend"]
    if r["gpu"] != "a GPU is present":  # where there is one, the refusal cannot be seen (CI has none)
        assert r["gpu"].startswith("PyTorch sees no GPU")


def test_train_fp32_matmul_sets_torchs_cuda_matmul_and_cudnn_precision(results):
    # Set at build, whatever the device (a CPU run keeps oneDNN's IEEE float32 either way).
    assert results["fp32_matmul"] == {"tf32": ["tf32", "tf32"], "highest": ["ieee", "ieee"]}


def test_a_cpu_run_stays_on_the_cpu_whatever_keras_would_pick(results):
    # The scenario makes "meta" Keras's default device after the build: meta tensors hold no data, so
    # a batch, variable read or tensor an op created outside the engine's device scope would fail.
    r = results["device"]
    assert r["default_device"] == "meta"
    assert r["variable_devices"] == ["cpu"]
    assert math.isfinite(r["train_loss"]) and r["eval_loss"] == pytest.approx(r["train_loss"], rel=1e-6)


@pytest.mark.slow
def test_torch_compile_traces_without_training_and_evaluates_like_eager():
    # torch.compile's aot_eager backend: the engine's compiled path whole (Dynamo's graphs, their
    # backward through AOTAutograd, the recompile limit, tracing without training) without Inductor's
    # C++ code generation, which took 6 minutes of this 2-core machine for the same graphs (Inductor's
    # kernels are PyTorch's to test; benchmarks/train_step_speed.py --torch-compile runs them).
    r = run_scenarios("compile", timeout=1800)["compile"]
    assert r["backend"]["compile"] == "torch.compile" and r["backend"]["compile_backend"] == "aot_eager"
    assert r["state_unchanged_by_tracing"]  # weights, optimizer, dropout's seed states, torch's generator
    # Keras's per-assignment hook stays eager (most of the tracing time when Dynamo compiled it).
    assert r["setattr_hook_name"] == "_setattr_hook" and not r["setattr_hook_compiled"]
    assert r["eval_loss"] == pytest.approx(r["eager_eval_loss"], rel=1e-5)
    assert all(math.isfinite(v) for v in r["losses"]) and r["changed"] == r["trainable"]


def test_two_ddp_ranks_equal_one_process_on_the_combined_batch():
    torchrun = Path(sys.executable).parent / "torchrun"
    r, found = run_workers([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "tests.mlpf.train.ddp_check"],
                           cwd=ROOT, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert sorted(found) == ["rank-0", "rank-1"]
    for rank, out in enumerate(found.values()):
        assert out["rank"] == rank
        assert out["size"] == 2 and out["events"] == 2
        # Two ranks' gradients averaged vs one batch's: float32 summation order differs, nothing else.
        assert out["max_weight_difference"] < 1e-4
        assert out["max_rank_difference"] == 0.0  # every rank applies the same averaged gradients
        assert out["loss"] == pytest.approx(out["expected_loss"], rel=1e-5)


# -- the scenarios: run in the child process, on the torch backend ----------------------------------


def _small(**changes):
    from hepbench.mlpf.config import ModelConfig

    return ModelConfig(**{"bin_size": 16, "distance_dim": 8, "ffn_dist_hidden_dim": 8, "output_dim": 16,
                          "decoder_hidden_dim": 16, "num_graph_layers_id": 1, "num_graph_layers_reg": 1, **changes})


def _cfg(**changes):
    from hepbench.mlpf.config import TrainConfig

    return TrainConfig(**{"learning_rate": 3e-3, "seed": 3, **changes})


def _batch() -> dict:
    from tests.mlpf.train.distributed_check import combined_batch

    return combined_batch(N_REAL, LENGTH, seed=2)


def _engine(model_cfg=None, **train):
    from hepbench.mlpf.engines.torch import TorchEngine

    engine = TorchEngine(device="cpu", threads=1)
    engine.configure()
    engine.build(model_cfg or _small(), _cfg(**train))
    return engine


def _max_difference(a, b) -> float:
    import numpy as np

    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b))


def _changed(before, engine) -> int:
    import numpy as np

    return sum(not np.array_equal(a, np.asarray(v.value.detach())) for a, v in zip(before, engine.model.trainable_variables))


def _parts(result) -> list[dict]:
    return [{"events": p.events, "padded_length": p.padded_length, "real_elements": p.real_elements} for p in result.parts]


def scenario_steps() -> dict:
    import numpy as np
    import torch

    from hepbench.mlpf.model.init import assign_initial_weights, set_random_seed
    from hepbench.mlpf.model.losses import mlpf_losses
    from hepbench.mlpf.model.mlpf import build_model
    from hepbench.mlpf.train.optimizer import make_optimizer

    b, cfg = _batch(), _cfg()
    torch.set_num_threads(1)  # as the engine: the same summation order
    # The textbook step: loss, backward, the optimizer recipe's update from the gradients.
    set_random_seed(cfg.seed)
    model = build_model(_small())
    assign_initial_weights(model, cfg.seed)
    optimizer = make_optimizer(cfg)
    optimizer.build(model.trainable_variables)
    X, y = torch.from_numpy(b["X"]), torch.from_numpy(b["y"])
    plain = []
    for _ in range(3):
        for v in model.trainable_variables:
            v.value.grad = None
        loss = mlpf_losses(X, y, model(X, training=True), cfg.loss_weights)["loss"]
        loss.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in model.trainable_variables], model.trainable_variables)
        plain.append(loss.item())

    engine = _engine()
    initial = [np.asarray(v.value.detach()).copy() for v in engine.model.trainable_variables]
    results = [engine.train_step(b) for _ in range(3)]
    first = results[0]
    return {
        "losses": [r.loss for r in results], "plain_losses": plain,
        "max_weight_difference": _max_difference([v.value.detach() for v in engine.model.trainable_variables],
                                                 [v.value.detach() for v in model.trainable_variables]),
        "changed": _changed(initial, engine), "trainable": len(initial),
        "parts": _parts(first), "events": first.events, "real_elements": first.real_elements,
        "padded_elements": first.padded_elements, "loss_is_float": type(first.loss) is float,
        "backend": engine.backend(), "software": engine.software(), "devices": engine.devices(),
        "peak_device_memory": engine.peak_device_memory(),
    }


def scenario_eval() -> dict:
    import torch

    from hepbench.mlpf.model.losses import mlpf_losses

    b, engine = _batch(), _engine()
    before = engine.state()
    result = engine.eval_step(b)
    with torch.no_grad():
        expected = mlpf_losses(b["X"], b["y"], engine.model(torch.from_numpy(b["X"]), training=False))["loss"]
    return {"loss": result.loss, "expected": float(expected), "parts": _parts(result),
            "state_unchanged": _max_difference(before, engine.state()) == 0.0}


def scenario_state() -> dict:
    import numpy as np

    b = _batch()
    first = _engine(_small(dropout=0.3))
    for _ in range(2):
        first.train_step(b)
    saved = first.state()
    continued = first.train_step(b).loss
    second = _engine(_small(dropout=0.3), seed=99)  # other initial weights, which the state replaces
    second.load_state(saved)
    resumed = second.train_step(b).loss
    errors = {}
    for name, arrays in (("too_few", saved[:-1]), ("wrong_shape", [np.zeros(1, np.float32), *saved[1:]])):
        try:
            second.load_state(arrays)
        except ValueError as e:
            errors[name] = str(e)
    return {"count": len(saved), "model_variables": len(first.model.variables),
            "optimizer_variables": len(first.optimizer.variables),
            "first_optimizer_variable": first.optimizer.variables[0].path,
            "continued_loss": continued, "resumed_loss": resumed,
            "max_difference_after": _max_difference(first.state(), second.state()), **errors}


def scenario_precision() -> dict:
    import numpy as np

    b, out = _batch(), {}
    for precision in ("bf16", "fp16"):
        engine = _engine(precision=precision)
        initial = [np.asarray(v.value.detach()).copy() for v in engine.model.trainable_variables]
        losses = [engine.train_step(b).loss for _ in range(4)]
        out[precision] = {"compute_dtype": engine.model.compute_dtype, "optimizer": type(engine.optimizer).__name__,
                          "losses": losses, "eval_loss": engine.eval_step(b).loss,
                          "changed": _changed(initial, engine), "trainable": len(initial)}
    return out


def scenario_refusals() -> dict:
    import torch

    from hepbench.core.errors import HepbenchError
    from hepbench.mlpf.engines.base import MissingDevices
    from hepbench.mlpf.engines.torch import TorchEngine

    out = {}
    for name, kwargs in (("mirrored", {"kind": "mirrored"}), ("replicas", {"replicas": 2}),
                         ("device", {"device": "tpu"}), ("threads", {"threads": 0})):
        try:
            TorchEngine(**kwargs)
        except ValueError as e:
            out[name] = str(e)
    try:
        TorchEngine(kind="ddp", device="cpu").configure()
    except HepbenchError as e:
        out["ddp_without_group"] = str(e)
    try:
        _engine(compile=True, compile_backend="no-such-backend")
    except HepbenchError as e:
        out["compile_backend"] = str(e)
    out["gpu"] = "a GPU is present"
    if not torch.cuda.is_available():
        out["gpu"] = "configured a GPU engine without a GPU"
        try:
            TorchEngine(device="gpu").configure()
        except MissingDevices as e:
            out["gpu"] = str(e)
    return out


def scenario_fp32_matmul() -> dict:
    import torch

    out = {}
    for setting in ("tf32", "highest"):
        _engine(fp32_matmul=setting)
        out[setting] = [torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision]
    return out


def scenario_device() -> dict:
    from keras.src.backend.torch import core

    b, engine = _batch(), _engine()
    # Where Keras's torch backend puts what it creates outside a device scope (the GPU, where there is
    # one). Not before the build: the model's symbolic build falls back to real tensors on it.
    default, core.DEFAULT_DEVICE = core.DEFAULT_DEVICE, "meta"
    try:
        saved = engine.state()
        train = engine.train_step(b).loss
        engine.load_state(saved)
        out = {"default_device": str(core.get_device()), "train_loss": train, "eval_loss": engine.eval_step(b).loss}
    finally:
        core.DEFAULT_DEVICE = default
    variables = [*engine.model.variables, *engine.optimizer.variables]
    return {**out, "variable_devices": sorted({v._value.device.type for v in variables})}


def scenario_compile() -> dict:
    import inspect

    import numpy as np
    from keras.src.backend.torch.layer import TorchLayer
    from torch._dynamo.convert_frame import input_codes

    b = _batch()
    # Dropout: seed states that a training-mode forward pass advances. Few layers: each is a few
    # graphs to compile (Keras breaks the graph at every layer call).
    model_cfg = _small(dropout=0.2, num_graph_layers_reg=0, id_num_layers=1, charge_num_layers=1, pt_num_layers=1,
                       eta_num_layers=1, phi_num_layers=1, energy_num_layers=1)
    # The eager engine first: configuring an engine clears Keras's session, and with it Dynamo's
    # compiled code (torch._dynamo.reset), which the compiled engine's steps would compile again.
    eager_eval = _engine(model_cfg).eval_step(b).loss  # the same initial weights, eager
    engine = _engine(model_cfg, compile=True, compile_backend="aot_eager")
    before = engine.state()
    engine.trace_train(b)
    engine.trace_eval(b)
    unchanged = _max_difference(before, engine.state()) == 0.0
    eval_loss = engine.eval_step(b).loss
    initial = [np.asarray(v.value.detach()).copy() for v in engine.model.trainable_variables]
    losses = [engine.train_step(b).loss for _ in range(2)]
    # Every code object Dynamo was handed: Keras's attribute hook must not be among them.
    hook = inspect.unwrap(TorchLayer._setattr_hook).__code__
    return {"backend": engine.backend(), "state_unchanged_by_tracing": unchanged,
            "setattr_hook_compiled": hook in input_codes, "setattr_hook_name": hook.co_name,
            "eval_loss": eval_loss, "eager_eval_loss": eager_eval, "losses": losses,
            "changed": _changed(initial, engine), "trainable": len(initial)}


SCENARIOS = {name[len("scenario_"):]: f for name, f in dict(globals()).items() if name.startswith("scenario_")}


def main(names: list[str]) -> None:
    import keras

    if keras.backend.backend() != "torch":
        raise SystemExit(f"run with KERAS_BACKEND=torch (Keras has the {keras.backend.backend()} backend)")
    report("scenarios", {name: SCENARIOS[name]() for name in names})


if __name__ == "__main__":
    main(sys.argv[1:])
