#!/usr/bin/env python
"""Training-step throughput of the default MLPF model: events/s and achieved GFLOP/s.

Times full optimisation steps (forward, loss, backward, Adam update) on generated ttbar events,
batch 2, for each precision with and without XLA, in one process so the variants are compared on
the same machine state. Two shapes:
  fixed     every event padded (or truncated) to --elements (6400: the reference benchmark's shape)
  multiplicity  every event padded to the next multiple of bin_size (what hepbench's pipeline does)
Compilation/tracing and --warmup steps are excluded; the figure is the median over --steps. On
TensorFlow the step is the benchmark's own (hepbench.mlpf.engines.tensorflow); on JAX a stateless
jitted step of this script.
GFLOP/s counts the model's matrix products (hepbench.mlpf.model.flops) over padded elements; a plain
fp32 4096 x 4096 matmul measured first gives the machine's practical ceiling, so that figures from
different machines can be compared as a fraction of it (the reference reached about 50 % of it).

    python benchmarks/train_step_speed.py [--precisions fp32,bf16,fp16] [--xla both|on|off] [--steps 5]
    KERAS_BACKEND=jax python benchmarks/train_step_speed.py     # the model on JAX (e.g. a GPU)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, installed or not

import hepbench  # noqa: E402,F401  (first: it configures TensorFlow before keras imports it)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from hepbench.mlpf.config import ModelConfig, TrainConfig  # noqa: E402
from hepbench.mlpf.data.synth import file_rng, generate_event  # noqa: E402
from hepbench.mlpf.model.flops import training_flops  # noqa: E402
from hepbench.mlpf.model.mlpf import build_model, parameter_counts  # noqa: E402


def batch(events, length):
    """The data pipeline's batch of these events, padded (or truncated) to `length` elements."""
    X = np.zeros((len(events), length, 12), np.float32)
    y = np.zeros((len(events), length, 7), np.float32)
    n = np.zeros(len(events), np.int32)
    for i, e in enumerate(events):
        n[i] = min(length, e.num_elements)
        X[i, :n[i]], y[i, :n[i]] = e.X[:n[i]], e.ygen[:n[i]]
    return {"X": X, "y": y, "n_elements": n}


def make_step(model_cfg: ModelConfig, cfg: TrainConfig):
    """A seeded model and its step on this Keras backend: `step(batch)` returns the batch's loss (a
    float, so the step has finished)."""
    if keras.backend.backend() == "tensorflow":
        from hepbench.mlpf.engines.tensorflow import TensorFlowEngine

        engine = TensorFlowEngine()
        engine.build(model_cfg, cfg)
        return lambda batch: engine.train_step(batch).loss
    if keras.backend.backend() == "jax":
        keras.utils.set_random_seed(cfg.seed)
        jax_step = _jax_step(build_model(model_cfg, cfg.precision), cfg)
        return lambda batch: float(jax_step(batch["X"], batch["y"])["loss"])
    raise SystemExit(f"backend {keras.backend.backend()} is not supported by this benchmark")


def _jax_step(model, cfg: TrainConfig):
    """The same step for JAX: stateless model call, jax.grad, stateless optimizer update."""
    import jax

    from hepbench.mlpf.model.losses import mlpf_losses
    from hepbench.mlpf.train.optimizer import make_optimizer

    optimizer = make_optimizer(cfg)
    optimizer.build(model.trainable_variables)
    state = [
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    ]

    def loss_fn(trainable, non_trainable, X, y):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, X, training=True)
        losses = mlpf_losses(X, y, outputs, cfg.loss_weights)
        return losses["loss"], (losses, non_trainable)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def step(state, X, y):
        trainable, non_trainable, opt_vars = state
        (_, (losses, non_trainable)), grads = grad_fn(trainable, non_trainable, X, y)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return [trainable, non_trainable, opt_vars], losses

    class Step:
        def __call__(self, X, y):
            nonlocal state
            state, losses = step(state, X, y)
            return losses

    return Step()


def matmul_ceiling(size: int = 4096, repeats: int = 10) -> float:
    """GFLOP/s of a plain fp32 size x size matmul on this backend and device: the practical ceiling."""
    a = keras.random.normal((size, size), seed=1)
    b = keras.random.normal((size, size), seed=2)
    if keras.backend.backend() == "jax":
        import jax

        matmul = jax.jit(keras.ops.matmul)
    else:  # eager: one large matmul, its dispatch is nothing beside it
        matmul = keras.ops.matmul
    float(keras.ops.sum(matmul(a, b)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(keras.ops.sum(matmul(a, b)))
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9  # the best of the repeats: a ceiling, not a typical value


def run(precision, xla, data, model_cfg, steps, warmup):
    cfg = TrainConfig(precision=precision, jit_compile=xla, learning_rate=1e-4, seed=1)
    step = make_step(model_cfg, cfg)
    start = time.perf_counter()
    step(data)
    first = time.perf_counter() - start
    for _ in range(warmup):
        step(data)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = step(data)  # a float: the step has finished on the device
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both")
    parser.add_argument("--shapes", default="fixed,multiplicity")
    parser.add_argument("--elements", type=int, default=6400)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    model_cfg = ModelConfig()
    rng = file_rng(0, "ttbar", 0)
    events = [generate_event(rng, "ttbar") for _ in range(args.batch)]
    bins = model_cfg.bin_size
    lengths = {"fixed": args.elements,
               "multiplicity": -(-max(min(e.num_elements, args.elements) for e in events) // bins) * bins}
    real = sum(min(e.num_elements, args.elements) for e in events)
    trainable, frozen = parameter_counts(build_model(model_cfg))
    print(f"backend {keras.backend.backend()}, device {keras.backend.backend() == 'jax' and __import__('jax').devices()[0] or 'cpu'}; "
          f"model {trainable:,} trainable + {frozen:,} non-trainable; batch {args.batch}; "
          f"{real / args.batch:.0f} real elements per event")
    ceiling = matmul_ceiling()
    print(f"plain fp32 4096 x 4096 matmul: {ceiling:.0f} GFLOP/s (the practical ceiling; % below is of it)")
    xla_modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.xla]
    if keras.backend.backend() == "jax":
        xla_modes = (True,)  # jax.jit always compiles with XLA
    print(f"{'shape':>12} {'length':>6} {'precision':>9} {'xla':>5} {'compile s':>9} {'step s':>7} {'events/s':>9} {'GFLOP/s':>8} {'%':>4}  loss")
    for shape in args.shapes.split(","):
        data = batch(events, lengths[shape])
        flops = training_flops(model_cfg, lengths[shape]) * args.batch
        for precision in args.precisions.split(","):
            for xla in xla_modes:
                first, step_s, loss = run(precision, xla, data, model_cfg, args.steps, args.warmup)
                rate = flops / step_s / 1e9
                print(f"{shape:>12} {lengths[shape]:>6} {precision:>9} {str(xla):>5} {first:9.1f} {step_s:7.2f} "
                      f"{args.batch / step_s:9.3f} {rate:8.1f} {100 * rate / ceiling:4.0f}  {loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
