#!/usr/bin/env python
"""Training-step throughput of the default MLPF model on each backend: events/s and % of the matmul ceiling.

Times full optimisation steps (forward, loss, backward, Adam update) on generated ttbar events,
batch 2, through each backend's own engine (hepbench.mlpf.engines.backends.make_engine: the
benchmark's steps, not a copy of them), for each precision and compile mode:
  tensorflow  tf.function, and tf.function+xla (--xla)
  jax         jax.jit (always)
  torch       eager, and torch.compile (--torch-compile)
A process has one Keras backend, so each backend and variant runs in a subprocess of its own; all of
them build the same batches from the same seed, in two shapes:
  fixed         every event padded (or truncated) to --elements (6400: the reference benchmark's shape)
  multiplicity  every event padded to the next multiple of bin_size (what hepbench's pipeline does)
Compilation/tracing and --warmup steps are excluded; the figure is the median over --steps. The
first step's loss (before any update) is printed too: the engines start from the same weights, so
it agrees across backends.
GFLOP/s counts the model's matrix products (hepbench.mlpf.model.flops) over padded elements. Each
backend first measures its fp32 matmul ceiling as a CPU copy of `hepbench run` measures the peak of
its model FLOPs utilisation (hepbench.mlpf.engines.ceiling, with bench.ceiling_seconds' default
budget: up to 4096 x 4096 products, the fastest); the best of these is the machine's practical
ceiling, and % is of it, so that figures from different machines and backends compare (the
reference reached about 50 % of it). For an fp32 row on the backend whose ceiling is the best, % is
the report's model_flops_utilisation of the same step; bf16 and fp16 rows are of the fp32 ceiling.

A/B of environment settings (an allocator by LD_PRELOAD, thread or oneDNN variables): each
--variant LABEL=NAME=VALUE[,NAME=VALUE...] (LABEL= alone: the environment as it is) runs every
worker again with those variables set, --rounds times, the variants alternating within each round
so that a machine's changing load falls on all of them; the table then gives each variant's median
events/s and its median ratio to the first variant's in the same round.

    python benchmarks/train_step_speed.py [--backends tensorflow,jax,torch] [--precisions fp32,bf16,fp16]
        [--xla both|on|off] [--torch-compile off|on|both] [--device cpu|gpu] [--steps 5]
        [--variant LABEL=NAME=VALUE,... --variant ... --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from hepbench.mlpf.engines.backends import BACKENDS, require_backend, select_backend  # noqa: E402  (imports no framework)

RESULT = "RESULT "  # a worker's result lines; everything else it prints is the framework's chatter


# -- the worker: one backend, one precision, one compile mode, every shape -------------------------


def batch(events, length):
    """The data pipeline's batch of these events, padded (or truncated) to `length` elements."""
    import numpy as np

    X = np.zeros((len(events), length, 12), np.float32)
    y = np.zeros((len(events), length, 7), np.float32)
    n = np.zeros(len(events), np.int32)
    for i, e in enumerate(events):
        n[i] = min(length, e.num_elements)
        X[i, : n[i]], y[i, : n[i]] = e.X[: n[i]], e.ygen[: n[i]]
    orig = np.array([e.num_elements for e in events], np.int32)
    return {"X": X, "y": y, "n_elements": n, "n_elements_orig": orig}


def events_and_lengths(n_events: int, elements: int, bin_size: int):
    """The generated events (seeded: every worker gets the same) and each shape's padded length."""
    from hepbench.mlpf.data.synth import file_rng, generate_event

    rng = file_rng(0, "ttbar", 0)
    events = [generate_event(rng, "ttbar") for _ in range(n_events)]
    longest = max(min(e.num_elements, elements) for e in events)
    return events, {"fixed": elements, "multiplicity": -(-longest // bin_size) * bin_size}


def worker(spec: dict) -> None:
    """Build the engine of spec's backend and variant, time its train step on every shape, print results."""
    select_backend(spec["backend"])  # before anything imports keras
    from hepbench.core.errors import HepbenchError
    from hepbench.mlpf.config import BenchConfig, ModelConfig, TrainConfig
    from hepbench.mlpf.engines.backends import make_engine
    from hepbench.mlpf.engines.ceiling import measure
    from hepbench.mlpf.model.flops import training_flops

    def emit(**fields):
        print(RESULT + json.dumps(fields), flush=True)

    model_cfg = ModelConfig()
    cfg = TrainConfig(
        precision=spec["precision"], jit_compile=spec["xla"], compile=spec["torch_compile"], learning_rate=1e-4, seed=1
    )
    engine = make_engine(spec["backend"], device=spec["device"], threads=spec["threads"])
    engine.configure()
    if spec["ceiling"]:
        device = engine.devices()[0]
        ceiling = measure(spec["backend"], "fp32", BenchConfig().ceiling_seconds, device=device["type"])
        emit(ceiling=ceiling.flops_per_second / 1e9, size=ceiling.size, device=device["name"])
    try:
        engine.build(model_cfg, cfg)
    except (HepbenchError, ValueError) as e:  # a precision this backend does not support: refused clearly
        emit(refused=str(e))
        return
    mode = engine.backend()["compile"]
    events, lengths = events_and_lengths(spec["batch"], spec["elements"], model_cfg.bin_size)
    for shape in spec["shapes"]:
        prepared = next(iter(engine.train_batches([batch(events, lengths[shape])])))
        start = time.perf_counter()
        engine.trace_train(prepared)
        compile_s = time.perf_counter() - start
        first = engine.train_step(prepared).loss
        for _ in range(spec["warmup"]):
            engine.train_step(prepared)
        times = []
        for _ in range(spec["steps"]):
            start = time.perf_counter()
            engine.train_step(prepared)  # returns once the loss is on the host: the step has finished
            times.append(time.perf_counter() - start)
        step_s = statistics.median(times)
        emit(
            shape=shape,
            length=lengths[shape],
            mode=mode,
            compile_s=compile_s,
            step_s=step_s,
            events_per_s=spec["batch"] / step_s,
            gflops=training_flops(model_cfg, lengths[shape]) * spec["batch"] / step_s / 1e9,
            first_loss=first,
        )


# -- the driver: one subprocess per backend and variant, then the table ---------------------------


def variants(backend: str, args) -> list[dict]:
    """(xla, torch_compile) of each variant this backend runs; the others ignore both settings."""
    choice = {"both": (False, True), "on": (True,), "off": (False,)}
    if backend == "tensorflow":
        return [{"xla": x, "torch_compile": False} for x in choice[args.xla]]
    if backend == "torch":
        return [{"xla": False, "torch_compile": c} for c in choice[args.torch_compile]]
    return [{"xla": False, "torch_compile": False}]  # jax.jit always compiles with XLA


def run_worker(spec: dict, script: str = __file__, env: dict | None = None) -> list[dict]:
    """The RESULT lines of `script --worker spec` in a process of its own (environment: ours, plus `env`)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), **(env or {})}
    proc = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(spec)], capture_output=True, text=True, env=env
    )
    results = [json.loads(line[len(RESULT) :]) for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        results.append({"failed": f"exit {proc.returncode}: {tail}"})
    return results


def parse_variant(text: str) -> tuple[str, dict]:
    """LABEL=NAME=VALUE[,NAME=VALUE...] → (LABEL, {NAME: VALUE}); ValueError naming the bad part."""
    label, _, assignments = text.partition("=")
    env = {}
    for item in filter(None, assignments.split(",")):
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ValueError(f"--variant {text!r}: {item!r} is not NAME=VALUE")
        env[name] = value
    if not label:
        raise ValueError(f"--variant {text!r}: the label before the first '=' is empty")
    return label, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both", help="TensorFlow's XLA")
    parser.add_argument(
        "--torch-compile",
        choices=("both", "on", "off"),
        default="off",
        help="torch.compile of the PyTorch step (off: eager)",
    )
    parser.add_argument("--shapes", default="fixed,multiplicity")
    parser.add_argument("--elements", type=int, default=6400)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None, help="default: what the engine picks")
    parser.add_argument("--threads", type=int, default=None, help="framework threads (default: the engine's)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=NAME=VALUE,...",
        help="environment variant to compare (repeatable; the first is the baseline)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of every variant, alternating")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    try:
        env_variants = [parse_variant(v) for v in args.variant] or [("", {})]
    except ValueError as e:
        parser.error(str(e))
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")

    backends = args.backends.split(",")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"--backends: {', '.join(unknown)} not among {', '.join(BACKENDS)}")
    shapes = args.shapes.split(",")
    common = {
        "shapes": shapes,
        "elements": args.elements,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "device": args.device,
        "threads": args.threads,
    }
    ceilings, rows = {}, {}  # rows[(shape, length, precision)][column] = the results of every round
    columns = []
    print(
        f"{'backend':>10} {'mode':>16} {'shape':>12} {'length':>6} {'precision':>9} {'compile s':>9} "
        f"{'step s':>7} {'events/s':>9} {'GFLOP/s':>8}  first loss",
        flush=True,
    )
    installed = []
    for backend in backends:
        try:
            require_backend(backend)
            installed.append(backend)
        except Exception as e:  # MissingExtra: say so and go on with the others
            print(f"{backend:>10}: not installed ({e})", flush=True)
    for round_ in range(args.rounds):
        for e, (label, env) in enumerate(env_variants):
            for backend in installed:
                for v, variant in enumerate(variants(backend, args)):
                    for p, precision in enumerate(args.precisions.split(",")):
                        first = v == p == e == round_ == 0
                        spec = {**common, **variant, "backend": backend, "precision": precision, "ceiling": first}
                        for r in run_worker(spec, env=env):
                            if "ceiling" in r:
                                ceilings[backend] = r["ceiling"]
                                print(
                                    f"{backend:>10}: fp32 matmul ceiling ({r['size']} x {r['size']}) "
                                    f"{r['ceiling']:.0f} GFLOP/s on {r['device']}",
                                    flush=True,
                                )
                            elif "shape" in r:
                                column = f"{backend} {r['mode']}" + (f" [{label}]" if label else "")
                                if column not in columns:
                                    columns.append(column)
                                cell = rows.setdefault((r["shape"], r["length"], precision), {})
                                cell.setdefault(column, []).append({**r, "round": round_, "variant": e})
                                print(
                                    f"{backend:>10} {r['mode']:>16} {r['shape']:>12} {r['length']:>6} {precision:>9} "
                                    f"{r['compile_s']:9.1f} {r['step_s']:7.2f} {r['events_per_s']:9.3f} "
                                    f"{r['gflops']:8.1f}  {r['first_loss']:.6f}" + (f"  [{label}]" if label else ""),
                                    flush=True,
                                )
                            else:
                                print(
                                    f"{backend:>10} {precision:>9}: {r.get('refused') or r.get('failed')}", flush=True
                                )
    if not rows:
        raise SystemExit("no backend ran")
    ceiling = max(ceilings.values(), default=None)
    if ceiling:
        best = max(ceilings, key=ceilings.get)
        print(f"\nevents/s (% of the best fp32 matmul ceiling, {ceiling:.0f} GFLOP/s on {best}), side by side:")
    else:
        print("\nevents/s, side by side (no matmul ceiling was measured):")

    def baseline(column: str) -> str:
        """The first variant's column of the same backend and mode."""
        return column.rsplit(" [", 1)[0] + f" [{env_variants[0][0]}]"

    def cell(cells: dict, column: str) -> str:
        runs = cells.get(column)
        if not runs:
            return "-"
        rate = statistics.median(r["events_per_s"] for r in runs)
        text = f"{rate:.3f}" + (
            f" ({100 * statistics.median(r['gflops'] for r in runs) / ceiling:.0f} %)" if ceiling else ""
        )
        base = {r["round"]: r["events_per_s"] for r in cells.get(baseline(column), [])}
        ratios = [r["events_per_s"] / base[r["round"]] for r in runs if r["round"] in base]
        if len(env_variants) > 1 and runs[0]["variant"] > 0 and ratios:
            text += f" x{statistics.median(ratios):.3f}"
        return text

    widths = [max(20, len(c)) for c in columns]
    print(f"{'shape':>12} {'length':>6} {'precision':>9} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
    for (shape, length, precision), cells in rows.items():
        text = [cell(cells, c) for c in columns]
        print(f"{shape:>12} {length:>6} {precision:>9} " + " ".join(f"{t:>{w}}" for t, w in zip(text, widths)))


if __name__ == "__main__":
    main()
