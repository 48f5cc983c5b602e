"""The PyTorch engine behind the seam: its native module is the Keras model (same weights, same
losses and gradients, bit for bit on the CPU), its optimizer is Keras's Adam, its train step is the
plain gradient step, its results are host numbers, its state round-trips, bf16 and fp16 train,
torch.compile takes the step whole (no graph break) and traces without training, and two DDP ranks
equal one process on the combined batch.

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

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch is the torch extra: pip install 'hepbench[torch]'"
)

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
N_REAL = [12, 5, 16, 0]  # an all-padding event too
LENGTH = 16


def run_scenarios(*names: str, env: dict | None = None, timeout: int = 600) -> dict:
    r, found = run_workers(
        [sys.executable, "-m", "tests.mlpf.train.test_torch_engine", *names],
        cwd=ROOT,
        env={**ENV, **(env or {})},
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return found["scenarios"]


@pytest.fixture(scope="module")
def results() -> dict:
    return run_scenarios("module", "optimizer", "steps", "eval", "state", "precision", "refusals", "fp32_matmul")


def test_the_native_module_is_the_keras_model(results):
    # Every variant of the model the configuration offers, fp32 and bf16: the Keras model on Keras's
    # torch backend and the native module, from the same initial weights, on the same batch.
    for variant in results["module"]:
        assert variant["missing"] == [] and variant["parameters"] == variant["keras_parameters"], variant["name"]
        # The same operations in the same order on the same CPU kernels: equal to the last bit.
        assert variant["loss_difference"] == 0.0, variant
        assert variant["max_gradient_difference"] == 0.0, variant
    assert {v["name"] for v in results["module"]} >= {"default fp32", "default bf16", "additive fp32"}


def test_a_module_that_differs_from_the_keras_model_is_refused(results):
    refusals = results["module"][0]["refusals"]
    assert refusals["renamed"] == (
        "the torch module and the Keras model differ: only in Keras "
        "['pfnet_dense/cg_id_0/msg_0/theta2'], only here ['pfnet_dense/cg_id_0/msg_0/theta']"
    )
    assert refusals["reshaped"] == "pfnet_dense/cg_id_0/msg_0/theta: shape (14, 16) here, (14, 17) in Keras"


def test_the_optimizer_is_kerass_adam(results):
    r = results["optimizer"]
    # The same gradients through keras.optimizers.Adam / AdamW (the TensorFlow and JAX engines'
    # optimizer) and through the engine's multi-tensor update, with a learning-rate decay every 2 steps.
    # Float32 rounding only (1.3e-6 measured): torch.optim.Adam's placement of epsilon would differ by
    # about 1e-4 here, a missed decay or weight decay by far more.
    for name in ("adam", "adamw"):
        assert r[name]["max_relative_difference"] < 1e-5, r[name]
        assert r[name]["moved"]
    # fp16's loss scale: an overflowing step is skipped and halves the scale; finite steps count
    # towards doubling it (after 3 in a row here), as keras.optimizers.LossScaleOptimizer does. The
    # scale after each of the steps finite, overflowing, finite, finite, finite:
    assert r["loss_scale"]["scales"] == r["loss_scale"]["keras_scales"] == [2.0**15, 2.0**14, 2.0**14, 2.0**14, 2.0**15]
    assert r["loss_scale"]["skipped_unchanged"]
    assert r["loss_scale"]["max_relative_difference"] < 1e-5


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
    assert r["backend"] == {
        "name": "torch",
        "version": r["software"]["torch"],
        "keras": r["software"]["keras"],
        "compile": "eager",
        "model": "torch.nn",
    }
    assert set(r["software"]) == {"torch", "keras", "cuda", "cudnn"}
    assert r["devices"] == [{"type": "cpu", "name": r["devices"][0]["name"]}]
    assert r["peak_device_memory"] is None  # a CPU run


def test_the_eval_step_is_inference_and_changes_nothing(results):
    r = results["eval"]
    assert r["loss"] == pytest.approx(r["expected"], rel=1e-6)
    assert r["state_unchanged"]
    assert r["parts"] == [{"events": 4, "padded_length": 16, "real_elements": 33}]


def test_the_state_round_trips(results):
    r = results["state"]
    # The module's tensors first, then the optimizer's, then torch's CPU generator (dropout's masks).
    assert r["count"] == r["model_variables"] + r["optimizer_variables"] + 1
    assert r["first_optimizer_variable"] == "adam/iteration"
    # A fresh engine (other initial weights, another generator state) given the state continues
    # exactly where the first one was, dropout masks included.
    assert r["resumed_loss"] == r["continued_loss"]
    assert r["max_difference_after"] == 0.0
    assert r["too_few"] == (
        f"holds {r['count'] - 1} arrays, the engine's state {r['count']} ({r['count'] - 1} "
        f"model and optimizer variables, 1 random generator state(s))"
    )
    assert r["wrong_shape"].startswith("variable 0 (pfnet_dense/") and "shape (1,)" in r["wrong_shape"]


@pytest.mark.parametrize(
    "precision, compute, optimizer",
    [
        ("bf16", "torch.bfloat16", "Adam"),
        ("fp16", "torch.float16", "LossScale"),  # dynamic loss scaling, as on TensorFlow
    ],
)
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
    assert r["compile_backend"].startswith(
        "train.compile_backend='no-such-backend' is not a torch.compile backend of this PyTorch; it has aot_eager, "
    )
    assert "inductor" in r["compile_backend"]
    if r["gpu"] != "a GPU is present":  # where there is one, the refusal cannot be seen (CI has none)
        assert r["gpu"].startswith("PyTorch sees no GPU")


def test_train_fp32_matmul_sets_torchs_cuda_matmul_and_cudnn_precision(results):
    # Set at build, whatever the device (a CPU run keeps oneDNN's IEEE float32 either way).
    assert results["fp32_matmul"] == {"tf32": ["tf32", "tf32"], "highest": ["ieee", "ieee"]}


def test_torch_compile_takes_the_step_whole_and_traces_without_training():
    # torch.compile's aot_eager backend: the engine's compiled path whole (Dynamo's graph, its backward
    # through AOTAutograd, tracing without training) without Inductor's C++ code generation, a minute of
    # this 2-core machine for the tiny model (benchmarks/host_overhead.py and train_step_speed.py run it).
    r = run_scenarios("compile")["compile"]
    assert r["backend"]["compile"] == "torch.compile" and r["backend"]["compile_backend"] == "aot_eager"
    assert r["backend"]["compile_mode"] == "default"  # CUDA graphs only for inductor on an NVIDIA GPU
    # One graph for forward and loss (its backward compiled with it), no break: fullgraph=True would
    # raise at a break, and explain counts them.
    assert (r["graphs"], r["graph_breaks"]) == (1, 0), r["break_reasons"]
    assert r["state_unchanged_by_tracing"]  # weights, optimizer, torch's generator
    # aot_eager runs eager's kernels: the same losses as the eager engine, step for step.
    assert r["losses"] == r["eager_losses"] and r["eval_loss"] == r["eager_eval_loss"]
    assert r["changed"] == r["trainable"]
    assert r["dropout_losses_finite"] and r["dropout_changed"] == r["trainable"]


@pytest.mark.parametrize("compile_backend", [None, "aot_eager"])
def test_two_ddp_ranks_equal_one_process_on_the_combined_batch(compile_backend):
    # Eager, and compiled (each rank's step and the single process's compiled by aot_eager).
    torchrun = Path(sys.executable).parent / "torchrun"
    extra = [compile_backend] if compile_backend else []
    r, found = run_workers(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "tests.mlpf.train.ddp_check", *extra],
        cwd=ROOT,
        env=ENV,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    assert sorted(found) == ["rank-0", "rank-1"]
    for rank, out in enumerate(found.values()):
        assert out["rank"] == rank
        assert out["size"] == 2 and out["events"] == 2
        assert out["compile"] == ("torch.compile" if compile_backend else "eager")
        # Two ranks' gradients averaged vs one batch's: float32 summation order differs, nothing else.
        assert out["max_weight_difference"] < 1e-4
        assert out["max_rank_difference"] == 0.0  # every rank applies the same averaged gradients
        assert out["loss"] == pytest.approx(out["expected_loss"], rel=1e-5)


# -- the scenarios: run in the child process, on the torch backend ----------------------------------


def _small(**changes):
    from hepbench.mlpf.config import ModelConfig

    return ModelConfig(
        **{
            "bin_size": 16,
            "distance_dim": 8,
            "ffn_dist_hidden_dim": 8,
            "output_dim": 16,
            "decoder_hidden_dim": 16,
            "num_graph_layers_id": 1,
            "num_graph_layers_reg": 1,
            **changes,
        }
    )


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


def _max_relative(a, b) -> float:
    import numpy as np

    return max(
        float(
            np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))
            / max(float(np.max(np.abs(np.asarray(y, np.float64)))), 1e-30)
        )
        for x, y in zip(a, b)
    )


def _weights(engine) -> list:
    return [p.detach().numpy().copy() for p in engine.model.parameters()]


def _changed(before, engine) -> int:
    import numpy as np

    return sum(not np.array_equal(a, b) for a, b in zip(before, _weights(engine)))


def _parts(result) -> list[dict]:
    return [
        {"events": p.events, "padded_length": p.padded_length, "real_elements": p.real_elements} for p in result.parts
    ]


MODULE_VARIANTS = {  # name: ModelConfig changes to the small model
    "default": {},
    "deeper": {"num_graph_layers_id": 2, "num_graph_layers_reg": 2, "num_node_messages": 2},
    "additive": {"node_update_mode": "additive", "num_graph_layers_id": 2},
    "bare": {
        "skip_connection": False,
        "regression_use_classification": False,
        "decoder_layernorm": False,
        "normalize_degrees": False,
        "clip_value_low": 0.1,
        "ffn_dist_num_layers": 0,
        "activation": "gelu",
    },
    "no graph layers": {"num_graph_layers_id": 0, "num_graph_layers_reg": 0, "activation": "swish"},
}


def scenario_module() -> list[dict]:
    import keras
    import numpy as np
    import torch

    from hepbench.mlpf.engines import torch_model
    from hepbench.mlpf.model.init import assign_initial_weights
    from hepbench.mlpf.model.losses import mlpf_losses
    from hepbench.mlpf.model.mlpf import build_model, parameter_counts

    torch.set_num_threads(1)
    b, weights, out = _batch(), _cfg().loss_weights, []
    X, y = torch.from_numpy(b["X"]), torch.from_numpy(b["y"])
    for name, changes in MODULE_VARIANTS.items():
        for precision in ("fp32", "bf16"):
            cfg = _small(**changes)
            with keras.device("cpu"):
                keras_model = build_model(cfg, precision)
                assign_initial_weights(keras_model, 5)
                keras_loss = mlpf_losses(X, y, keras_model(X, training=True), weights)["loss"]
                keras_loss.backward()
            keras_grads = {v.path: v.value.grad.numpy() for v in keras_model.trainable_variables}
            native = torch_model.build_module(cfg, precision, 5, torch.device("cpu"))
            loss = torch_model.mlpf_losses(X, y, native(X, training=True), weights)["loss"]
            loss.backward()
            grads = {torch_model.keras_path(n): p.grad.numpy() for n, p in native.named_parameters()}
            out.append(
                {
                    "name": f"{name} {precision}",
                    "missing": sorted(set(keras_grads) ^ set(grads)),
                    "parameters": list(torch_model.parameter_counts(native)),
                    "keras_parameters": list(parameter_counts(keras_model)),
                    "loss_difference": abs(float(loss) - float(keras_loss)),
                    "max_gradient_difference": max(
                        float(np.max(np.abs(keras_grads[k] - grads[k]))) for k in grads if k in keras_grads
                    ),
                }
            )
    refusals, theta = {}, "pfnet_dense/cg_id_0/msg_0/theta"
    values = torch_model.initial_weights(_small(), 5)
    renamed, reshaped = dict(values), {**values, theta: np.zeros((14, 17), np.float32)}
    renamed[theta + "2"] = renamed.pop(theta)
    for name, changed in (("renamed", renamed), ("reshaped", reshaped)):
        try:
            torch_model.assign_weights(torch_model.PFNetDense(_small()), changed)
        except ValueError as e:
            refusals[name] = str(e)
    out[0]["refusals"] = refusals
    return out


def scenario_optimizer() -> dict:
    import keras
    import numpy as np
    import torch

    from hepbench.mlpf.engines.torch_optimizer import Adam, LossScale
    from hepbench.mlpf.train.optimizer import make_optimizer

    rng = np.random.default_rng(4)
    shapes = [(3, 5), (5,), (7, 2)]
    initial = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(5)]
    out = {}
    for name, weight_decay in (("adam", 0.0), ("adamw", 0.05)):
        cfg = _cfg(learning_rate=0.1, lr_decay_steps=2, lr_decay_rate=0.5, weight_decay=weight_decay)
        with keras.device("cpu"):
            variables = [keras.Variable(a) for a in initial]
            reference = make_optimizer(cfg)
            reference.build(variables)
            for step in grads:
                reference.apply([torch.from_numpy(g) for g in step], variables)
        params = [torch.from_numpy(a.copy()) for a in initial]
        ours = Adam(params, cfg)
        for step in grads:
            ours.apply([torch.from_numpy(g) for g in step])
        out[name] = {
            "max_relative_difference": _max_relative(
                [p.numpy() for p in params], [keras.ops.convert_to_numpy(v.value) for v in variables]
            ),
            "moved": _max_difference([p.numpy() for p in params], initial) > 0.1,
        }
    # The loss scale: steps finite, inf, finite, finite, finite; growth after 3 finite steps.
    cfg = _cfg(learning_rate=0.1, precision="fp16")
    sequence = [grads[0], [np.full(s, np.inf, np.float32) for s in shapes], grads[1], grads[2], grads[3]]
    with keras.device("cpu"):
        variables = [keras.Variable(a) for a in initial]
        reference = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.1), dynamic_growth_steps=3)
        reference.build(variables)
        keras_scales = []
        for step in sequence:
            reference.apply([torch.from_numpy(g * float(reference.dynamic_scale)) for g in step], variables)
            keras_scales.append(float(reference.dynamic_scale))
    params = [torch.from_numpy(a.copy()) for a in initial]
    ours, scales = LossScale(Adam(params, cfg), growth_steps=3), []
    for i, step in enumerate(sequence):
        before = [p.clone() for p in params]
        ours.apply([torch.from_numpy(g * ours.scale) for g in step])
        scales.append(ours.scale)
        if i == 1:
            skipped = all(torch.equal(a, p) for a, p in zip(before, params)) and ours.iterations == 1
    out["loss_scale"] = {
        "scales": scales,
        "keras_scales": keras_scales,
        "skipped_unchanged": skipped,
        "max_relative_difference": _max_relative(
            [p.numpy() for p in params], [keras.ops.convert_to_numpy(v.value) for v in variables]
        ),
    }
    return out


def scenario_steps() -> dict:
    import torch

    from hepbench.mlpf.engines.torch_model import build_module, mlpf_losses
    from hepbench.mlpf.engines.torch_optimizer import Adam

    b, cfg = _batch(), _cfg()
    torch.set_num_threads(1)  # as the engine: the same summation order
    # The textbook step: loss, backward, the optimizer's update from the gradients.
    torch.manual_seed(cfg.seed)
    model = build_module(_small(), cfg.precision, cfg.seed, torch.device("cpu"))
    optimizer = Adam(list(model.parameters()), cfg)
    X, y = torch.from_numpy(b["X"]), torch.from_numpy(b["y"])
    plain = []
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        loss = mlpf_losses(X, y, model(X, training=True), cfg.loss_weights)["loss"]
        loss.backward()
        optimizer.apply([p.grad for p in model.parameters()])
        plain.append(loss.item())

    engine = _engine()
    initial = _weights(engine)
    results = [engine.train_step(b) for _ in range(3)]
    first = results[0]
    return {
        "losses": [r.loss for r in results],
        "plain_losses": plain,
        "max_weight_difference": _max_difference(_weights(engine), [p.detach() for p in model.parameters()]),
        "changed": _changed(initial, engine),
        "trainable": len(initial),
        "parts": _parts(first),
        "events": first.events,
        "real_elements": first.real_elements,
        "padded_elements": first.padded_elements,
        "loss_is_float": type(first.loss) is float,
        "backend": engine.backend(),
        "software": engine.software(),
        "devices": engine.devices(),
        "peak_device_memory": engine.peak_device_memory(),
    }


def scenario_eval() -> dict:
    import torch

    from hepbench.mlpf.engines.torch_model import mlpf_losses

    b, engine = _batch(), _engine()
    before = engine.state()
    result = engine.eval_step(b)
    with torch.no_grad():
        X, y = torch.from_numpy(b["X"]), torch.from_numpy(b["y"])
        expected = mlpf_losses(X, y, engine.model(X, training=False), _cfg().loss_weights)["loss"]
    return {
        "loss": result.loss,
        "expected": float(expected),
        "parts": _parts(result),
        "state_unchanged": _max_difference(before, engine.state()) == 0.0,
    }


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
    return {
        "count": len(saved),
        "model_variables": len(first.model.keras_named_tensors()),
        "optimizer_variables": len(first.optimizer.state_names()),
        "first_optimizer_variable": first.optimizer.state_names()[0],
        "continued_loss": continued,
        "resumed_loss": resumed,
        "max_difference_after": _max_difference(first.state(), second.state()),
        **errors,
    }


def scenario_precision() -> dict:
    b, out = _batch(), {}
    for precision in ("bf16", "fp16"):
        engine = _engine(precision=precision)
        initial = _weights(engine)
        losses = [engine.train_step(b).loss for _ in range(4)]
        out[precision] = {
            "compute_dtype": str(engine.model.compute_dtype),
            "optimizer": type(engine.optimizer).__name__,
            "losses": losses,
            "eval_loss": engine.eval_step(b).loss,
            "changed": _changed(initial, engine),
            "trainable": len(initial),
        }
    return out


def scenario_refusals() -> dict:
    import torch

    from hepbench.core.errors import HepbenchError
    from hepbench.mlpf.engines.base import MissingDevices
    from hepbench.mlpf.engines.torch import TorchEngine

    out = {}
    for name, kwargs in (
        ("mirrored", {"kind": "mirrored"}),
        ("replicas", {"replicas": 2}),
        ("device", {"device": "tpu"}),
        ("threads", {"threads": 0}),
    ):
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


def scenario_compile() -> dict:
    import torch
    import torch._dynamo

    b = _batch()
    eager = _engine()
    eager_losses = [eager.train_step(b).loss for _ in range(2)]
    eager_eval = eager.eval_step(b).loss
    engine = _engine(compile=True, compile_backend="aot_eager")
    placed = engine._ready(engine._placed(b))
    explained = torch._dynamo.explain(engine._train._forward)(placed["X"], placed["y"], None)
    before = engine.state()
    engine.trace_train(b)
    engine.trace_eval(b)
    unchanged = _max_difference(before, engine.state()) == 0.0
    initial = _weights(engine)
    losses = [engine.train_step(b).loss for _ in range(2)]
    out = {
        "backend": engine.backend(),
        "graphs": explained.graph_count,
        "graph_breaks": explained.graph_break_count,
        "break_reasons": [str(r) for r in explained.break_reasons],
        "state_unchanged_by_tracing": unchanged,
        "losses": losses,
        "eager_losses": eager_losses,
        "eval_loss": engine.eval_step(b).loss,
        "eager_eval_loss": eager_eval,
        "changed": _changed(initial, engine),
        "trainable": len(initial),
    }
    # Dropout in the compiled graph (its masks are drawn inside it).
    dropout = _engine(_small(dropout=0.2), compile=True, compile_backend="aot_eager")
    initial = _weights(dropout)
    dropout_losses = [dropout.train_step(b).loss for _ in range(2)]
    return {
        **out,
        "dropout_losses_finite": all(math.isfinite(v) for v in dropout_losses),
        "dropout_changed": _changed(initial, dropout),
    }


SCENARIOS = {name[len("scenario_") :]: f for name, f in dict(globals()).items() if name.startswith("scenario_")}


def main(names: list[str]) -> None:
    import keras

    if keras.backend.backend() != "torch":
        raise SystemExit(f"run with KERAS_BACKEND=torch (Keras has the {keras.backend.backend()} backend)")
    report("scenarios", {name: SCENARIOS[name]() for name in names})


if __name__ == "__main__":
    main(sys.argv[1:])
