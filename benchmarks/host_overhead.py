#!/usr/bin/env python
"""The host's cost per training step of each engine, side by side: what is left when the device's work
is negligible, and the number of operations a step launches.

A benchmark of accelerators measures the device only while the host that feeds it keeps up: a step
that costs the host 20 ms of Python and dispatch leaves a GPU that needs 15 ms for it idle part of
the time. This script measures that cost with the test suite's tiny model (bin_size 16, dims 8-16)
on a batch of 2 events of 64 elements, whose arithmetic is a few MFLOP: a step's time is then the
engine's host cost (Python, the framework's dispatch, the loss brought to the host). Per engine and
compile mode, each in a process of its own (one Keras backend per process):
  tensorflow  tf.function, and tf.function+xla (--xla)
  jax         jax.jit
  torch       eager, and torch.compile with --torch-compile BACKEND (aot_eager: Dynamo's graphs
              and AOTAutograd without code generation; inductor: generated kernels)
it builds the engine, traces the step, runs --warmup steps, then times --windows windows of --steps
steps on the same prepared batch: milliseconds per step, each window's. Beside it, the operations
one step launches:
  tensorflow  nodes of the traced step's graph, its function library included
  jax         instructions of the compiled executable's entry computation that do work (fusions,
              dots, sorts, copies, custom calls; not parameters, tuples or constants): on a GPU,
              about the kernels it launches
  torch       ATen operations dispatched by one step (torch.profiler; an op called inside another,
              aten::linear's aten::addmm, counts once), backward and optimizer included
and, with a built data set (--data-dir, default make run's work/tfds-s0), the input pipeline's rate
at the GPU batch size: batches of 32 events from the decoded events cached in memory (data.cache
memory, the GPU default), each padded to the longest event's bin, the second pass timed.

    python benchmarks/host_overhead.py [--backends tensorflow,jax,torch] [--xla] [--torch-compile aot_eager,inductor]
        [--windows 3] [--steps 50] [--warmup 5] [--threads 1] [--data-dir work/tfds-s0]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not
sys.path.insert(1, str(Path(__file__).resolve().parent))  # train_step_speed's batches and worker plumbing

from train_step_speed import RESULT, batch, events_and_lengths, run_worker  # noqa: E402

from hepbench.mlpf.engines.backends import BACKENDS, require_backend, select_backend  # noqa: E402  (no framework)

# The test suite's tiny model (tests/conftest.py, benchmarks/gpu_check.sh --device cpu).
TINY = {
    "bin_size": 16,
    "distance_dim": 8,
    "ffn_dist_hidden_dim": 8,
    "output_dim": 16,
    "decoder_hidden_dim": 16,
    "num_graph_layers_id": 1,
    "num_graph_layers_reg": 1,
}
ELEMENTS, EVENTS = 64, 2
JAX_NO_WORK = ("parameter", "get-tuple-element", "tuple", "constant", "bitcast")  # HLO that launches nothing
_OPCODE = re.compile(r"(?:^|\s)([a-z][a-z0-9-]*)\(")


# -- operations per step, one counter per framework ------------------------------------------------


def tensorflow_operations(engine) -> int:
    """Nodes of the traced train step's graph and of the functions it calls."""
    graph = engine._train._step.get_concrete_function().graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def jax_operations(engine) -> int:
    """Instructions that do work in the entry computation of the (one) compiled train step."""
    (executable,) = engine._train._executables.values()
    return entry_work(executable.as_text())


def entry_work(text: str) -> int:
    """Instructions of an HLO module's ENTRY computation other than JAX_NO_WORK's."""
    entry = text[text.index("\nENTRY ") :]
    entry = entry[: entry.index("\n}")]
    count = 0
    for line in entry.splitlines()[1:]:
        _, eq, rhs = line.partition(" = ")
        # "%x = f32[2,64]{1,0} opcode(operands), ..." or "%t = (f32[2], s32[]) tuple(...)": the first
        # word directly followed by "(" is the opcode (a shape never is)
        opcode = _OPCODE.search(rhs) if eq else None
        if opcode and opcode.group(1) not in JAX_NO_WORK:
            count += 1
    return count


def torch_operations(engine, prepared) -> int:
    """ATen operations one train step dispatches, each counted once (not those it calls itself)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.train_step(prepared)

    def inside_aten(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name.startswith("aten::"):
                return True
            parent = parent.cpu_parent
        return False

    return sum(e.name.startswith("aten::") and not inside_aten(e) for e in prof.events())


# -- the worker: one engine and compile mode --------------------------------------------------------


def worker(spec: dict) -> None:
    select_backend(spec["backend"])  # before anything imports keras
    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.engines.backends import make_engine

    cfg = TrainConfig(
        learning_rate=1e-3,
        seed=1,
        jit_compile=spec["xla"],
        compile=bool(spec["torch_compile"]),
        compile_backend=spec["torch_compile"] or "inductor",
    )
    model_cfg = ModelConfig(**TINY)
    engine = make_engine(spec["backend"], device="cpu", threads=spec["threads"])
    engine.configure()
    engine.build(model_cfg, cfg)
    events, lengths = events_and_lengths(EVENTS, ELEMENTS, model_cfg.bin_size)
    prepared = next(iter(engine.train_batches([batch(events, lengths["fixed"])])))
    start = time.perf_counter()
    engine.trace_train(prepared)
    trace_s = time.perf_counter() - start
    for _ in range(spec["warmup"]):
        engine.train_step(prepared)
    windows = []
    for _ in range(spec["windows"]):
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            engine.train_step(prepared)  # returns once the loss is on the host
        windows.append(1e3 * (time.perf_counter() - start) / spec["steps"])
    counters = {
        "tensorflow": lambda: tensorflow_operations(engine),
        "jax": lambda: jax_operations(engine),
        "torch": lambda: torch_operations(engine, prepared),
    }
    said = engine.backend()
    mode = f"{said['compile']} {said['compile_backend']}" if "compile_backend" in said else said["compile"]
    print(
        RESULT
        + json.dumps({"mode": mode, "trace_s": trace_s, "ms": windows, "operations": counters[spec["backend"]]()}),
        flush=True,
    )


# -- the input pipeline at the GPU batch size -------------------------------------------------------


def pipeline_rate(data_dir: Path, batch_size: int = 32) -> tuple[float, int]:
    """(events/s of the second pass, events per pass) over the train split, cached in memory."""
    from hepbench.mlpf.config import DataConfig
    from hepbench.mlpf.data.pipeline import Batches

    batches = Batches(data_dir, "train", DataConfig(batch_size=batch_size, cache="memory"), bin_size=640)
    batches.fill_cache()
    list(batches)  # the first pass (padding buffers, threads started)
    start = time.perf_counter()
    events = sum(len(b["n_elements"]) for b in batches)
    return events / (time.perf_counter() - start), events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--xla", action="store_true", help="TensorFlow with XLA too")
    parser.add_argument(
        "--torch-compile",
        default="",
        metavar="BACKEND[,BACKEND]",
        help="PyTorch with torch.compile on these backends too (aot_eager, inductor)",
    )
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="framework threads (1: the host cost alone)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "work" / "tfds-s0")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    for name in ("windows", "steps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    backends = args.backends.split(",")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"--backends: {', '.join(unknown)} not among {', '.join(BACKENDS)}")

    specs = []
    for backend in backends:
        try:
            require_backend(backend)
        except Exception as e:  # MissingExtra: say so and go on with the others
            print(f"{backend}: not installed ({e})", flush=True)
            continue
        specs.append({"backend": backend, "xla": False, "torch_compile": ""})
        if backend == "tensorflow" and args.xla:
            specs.append({"backend": backend, "xla": True, "torch_compile": ""})
        if backend == "torch" and args.torch_compile:
            specs.extend({"backend": backend, "xla": False, "torch_compile": c} for c in args.torch_compile.split(","))
    print(
        f"host time per training step: tiny model, {EVENTS} events of {ELEMENTS} elements, {args.threads} "
        f"thread(s), {args.windows} windows of {args.steps} steps after {args.warmup}",
        flush=True,
    )
    print(f"{'backend':>10} {'mode':>23} {'ms/step (median)':>17} {'windows':>22} {'ops/step':>8} {'trace s':>8}")
    for spec in specs:
        common = {"windows": args.windows, "steps": args.steps, "warmup": args.warmup, "threads": args.threads}
        for r in run_worker({**spec, **common}, script=__file__):
            if "failed" in r:
                print(f"{spec['backend']:>10}: {r['failed']}", flush=True)
                continue
            windows = "-".join(f"{ms:.2f}" for ms in (min(r["ms"]), max(r["ms"])))
            print(
                f"{spec['backend']:>10} {r['mode']:>23} {statistics.median(r['ms']):17.2f} {windows:>22} "
                f"{r['operations']:8d} {r['trace_s']:8.1f}",
                flush=True,
            )
    if (args.data_dir / "delphes_pf").is_dir():
        rate, events = pipeline_rate(args.data_dir)
        print(
            f"input pipeline, batches of 32 cached in memory: {rate:.0f} events/s (a pass of {events} events, "
            f"{args.data_dir})"
        )
    else:
        print(f"input pipeline: no built data set at {args.data_dir} (make data, or --data-dir)")


if __name__ == "__main__":
    main()
