#!/usr/bin/env python
"""Where a training step of the MLPF model spends its time: the top operations, per backend.

Builds the backend's own engine (hepbench.mlpf.engines.backends.make_engine, as train_step_speed.py
does), compiles the step, runs it once untraced and --warmup times, times --steps untraced steps
(the step time), then profiles --steps more with the framework's profiler:
  tensorflow  tf.profiler.experimental trace; the TensorFlow op events (`name:Type`) of every
              thread, grouped by op type (MatMul, _FusedMatMul, Exp, GatherV2, ...)
  jax         jax.profiler trace; the XLA thunk events (their `hlo_op` stat), grouped by HLO op
              with the instruction number dropped (dot, fusion kinds, copy, sort, ...)
  torch       torch.profiler over the CPU; key_averages by ATen op (aten::mm, aten::add, ...)
Both traces are XSpace protobufs (.xplane.pb), read with the xplane_pb2 module that ships in the
TensorFlow wheel (loaded from its file, so the JAX worker never imports TensorFlow).

An op's time is its self time: nested op events (a function call's body) are subtracted from
the op that encloses them, so no time counts twice. Shares are of the summed op time of the
profiled steps, which exceeds the step's wall time when ops run on several threads at once;
`--by name` groups by op name (TensorFlow: the graph node, JAX: the HLO instruction, PyTorch: the
op and its input shapes) instead of by type.

    python benchmarks/profile_step.py [--backends tensorflow,jax,torch] [--elements 6400] [--events 2]
        [--steps 3] [--precision fp32] [--top 15] [--by type|name] [--set model.KEY=VALUE] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.util
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not
sys.path.insert(1, str(Path(__file__).resolve().parent))  # train_step_speed's batches and worker plumbing

from train_step_speed import RESULT, batch, events_and_lengths, run_worker  # noqa: E402

from hepbench.core.errors import HepbenchError  # noqa: E402
from hepbench.core.files import write_json  # noqa: E402
from hepbench.mlpf.engines.backends import BACKENDS, require_backend, select_backend  # noqa: E402  (no framework)

_HLO_NUMBER = re.compile(r"\.\d+$")  # XLA's instruction numbering: fusion.12 and fusion.13 are one kind


# -- parsing: pure functions over the profilers' records -----------------------------------------


def self_times(events: list[tuple[int, int, str, str]]) -> list[tuple[str, str, int, int]]:
    """(type, name, self time, 1 call) of one thread's op events (start, duration, type, name): the
    duration less that of the op events nested directly inside it."""
    out, stack = [], []  # stack: [end, index into out] of the enclosing events
    for start, duration, kind, name in sorted(events, key=lambda e: (e[0], -e[1])):
        while stack and stack[-1][0] <= start:
            stack.pop()
        if stack:
            parent = out[stack[-1][1]]
            out[stack[-1][1]] = (parent[0], parent[1], parent[2] - duration, 1)
        out.append((kind, name, duration, 1))
        stack.append((start + duration, len(out) - 1))
    return out


def load_xplane_module():
    """TensorFlow's generated xplane_pb2, loaded from the wheel's file without importing TensorFlow."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise HepbenchError(
            "reading a trace needs the xplane protobuf module of the TensorFlow wheel, and "
            "TensorFlow is not installed: pip install 'hepbench[cpu]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "tsl" / "profiler" / "protobuf" / "xplane_pb2.py"
    if not path.is_file():
        raise HepbenchError(f"{path}: TensorFlow's xplane protobuf module is not where it is expected")
    module_spec = importlib.util.spec_from_file_location("hepbench_xplane_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _tf_op(plane, event) -> tuple[str, str] | None:
    """(type, name) of a TensorFlow op event: metadata `name:Type` with the type as display name."""
    meta = plane.event_metadata[event.metadata_id]
    if not meta.display_name or not meta.name.endswith(":" + meta.display_name):
        return None
    return meta.display_name, meta.name[: -len(meta.display_name) - 1]


def _jax_op(plane, event) -> tuple[str, str] | None:
    """(HLO op kind, instruction) of an XLA CPU thunk event: the one with an `hlo_op` stat."""
    for stat in event.stats:
        if plane.stat_metadata[stat.metadata_id].name == "hlo_op":
            name = stat.str_value or plane.stat_metadata[stat.ref_value].name
            return _HLO_NUMBER.sub("", name), name
    return None


OP_EVENT = {"tensorflow": _tf_op, "jax": _jax_op}


def xplane_records(space, backend: str) -> list[tuple[str, str, int, int]]:
    """(type, name, self time in ps, 1 call) of every op event of the trace, over all host threads."""
    op = OP_EVENT[backend]
    records = []
    for plane in space.planes:
        for line in plane.lines:
            events = []
            for event in line.events:
                found = op(plane, event)
                if found is not None:
                    events.append((event.offset_ps, event.duration_ps, *found))
            records.extend(self_times(events))
    return records


def read_xplane(logdir: Path, backend: str) -> list[tuple[str, str, int, int]]:
    files = sorted(Path(logdir).rglob("*.xplane.pb"))
    if not files:
        raise HepbenchError(f"{logdir}: the profiler wrote no .xplane.pb trace")
    space = load_xplane_module().XSpace()
    space.ParseFromString(files[-1].read_bytes())
    return xplane_records(space, backend)


def table(records, steps: int, by: str, top: int, only: frozenset = frozenset()) -> dict:
    """The top ops of (type, name, self ps, calls) records: ms per step, share of all op time, calls per
    step; with `only`, the rows are of those op types alone (shares still of all op time)."""
    time_ps, calls, total = collections.Counter(), collections.Counter(), 0
    for kind, name, ps, count in records:
        total += ps
        if only and kind not in only:
            continue
        key = kind if by == "type" else name
        time_ps[key] += ps
        calls[key] += count
    rows = [
        {
            "op": key,
            "ms_per_step": ps / steps / 1e9,
            "share": ps / total if total else 0.0,
            "calls_per_step": calls[key] / steps,
        }
        for key, ps in time_ps.most_common(top)
    ]
    return {
        "rows": rows,
        "op_ms_per_step": total / steps / 1e9,
        "ops": len(time_ps),
        "covered": sum(r["share"] for r in rows),
    }


# -- the worker: one backend ---------------------------------------------------------------------


def profile_tensorflow(engine, prepared, steps: int) -> list:
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="hepbench-profile-") as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            engine.train_step(prepared)
        tf.profiler.experimental.stop()
        return read_xplane(Path(logdir), "tensorflow")


def profile_jax(engine, prepared, steps: int) -> list:
    import jax

    with tempfile.TemporaryDirectory(prefix="hepbench-profile-") as logdir:
        jax.profiler.start_trace(logdir)
        for _ in range(steps):
            engine.train_step(prepared)
        jax.profiler.stop_trace()
        return read_xplane(Path(logdir), "jax")


def profile_torch(engine, prepared, steps: int, by: str) -> list:
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=by == "name") as prof:
        for _ in range(steps):
            engine.train_step(prepared)
    # Self CPU time in µs (→ ps, as in the traces), one record per op (and input shapes) with its calls.
    return [
        (
            avg.key,
            f"{avg.key} {avg.input_shapes}" if by == "name" else avg.key,
            int(avg.self_cpu_time_total * 1e6),
            avg.count,
        )
        for avg in prof.key_averages(group_by_input_shape=by == "name")
    ]


def worker(spec: dict) -> None:
    select_backend(spec["backend"])  # before anything imports keras
    from hepbench.mlpf.config import load_config
    from hepbench.mlpf.engines.backends import make_engine
    from hepbench.mlpf.model.flops import training_flops

    cfg = load_config(None, spec["set"] + [f"train.precision={spec['precision']}"])
    train = dataclasses.replace(cfg.train, learning_rate=1e-4, seed=1)  # train_step_speed's settings
    engine = make_engine(spec["backend"], device=spec["device"], threads=spec["threads"])
    engine.configure()
    engine.build(cfg.model, train)
    events, lengths = events_and_lengths(spec["events"], spec["elements"], cfg.model.bin_size)
    prepared = next(iter(engine.train_batches([batch(events, lengths["fixed"])])))
    engine.trace_train(prepared)
    for _ in range(1 + spec["warmup"]):
        engine.train_step(prepared)
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        engine.train_step(prepared)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    start = time.perf_counter()
    if spec["backend"] == "tensorflow":
        records = profile_tensorflow(engine, prepared, spec["steps"])
    elif spec["backend"] == "jax":
        records = profile_jax(engine, prepared, spec["steps"])
    else:
        records = profile_torch(engine, prepared, spec["steps"], spec["by"])
    traced_s = (time.perf_counter() - start) / spec["steps"]  # profiling and reading the trace included
    result = table(records, spec["steps"], spec["by"], spec["top"], frozenset(spec["only"]))
    flops = training_flops(cfg.model, lengths["fixed"]) * spec["events"]
    print(
        RESULT
        + json.dumps(
            {
                "backend": spec["backend"],
                "mode": engine.backend()["compile"],
                "step_s": step_s,
                "traced_s": traced_s,
                "gflops": flops / step_s / 1e9,
                **result,
            }
        ),
        flush=True,
    )


# -- the driver ----------------------------------------------------------------------------------


def print_result(r: dict, by: str) -> None:
    print(
        f"\n{r['backend']} ({r['mode']}): step {1e3 * r['step_s']:.0f} ms untraced ({r['gflops']:.1f} GFLOP/s), "
        f"{1e3 * r['traced_s']:.0f} ms traced; op time {r['op_ms_per_step']:.0f} ms per step over {r['ops']} op "
        f"{'types' if by == 'type' else 'names'}, the top {len(r['rows'])} cover {100 * r['covered']:.1f} %"
    )
    width = max([10, *(len(row["op"]) for row in r["rows"])])
    print(f"{'rank':>4}  {'op':<{width}} {'ms/step':>9} {'share':>7} {'calls/step':>10}")
    for i, row in enumerate(r["rows"], 1):
        print(
            f"{i:>4}  {row['op']:<{width}} {row['ms_per_step']:9.1f} {100 * row['share']:6.1f}% "
            f"{row['calls_per_step']:10.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=BACKENDS, help="one backend (default: tensorflow)")
    parser.add_argument("--backends", help="comma-separated backends, each in its own process")
    parser.add_argument("--elements", type=int, default=6400, help="elements per event (padded or truncated)")
    parser.add_argument("--events", type=int, default=2, help="events per batch")
    parser.add_argument("--steps", type=int, default=3, help="timed, then profiled, steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--by", choices=("type", "name"), default="type")
    parser.add_argument(
        "--only", default="", metavar="TYPE,...", help="rows of these op types only (e.g. Mul with --by name)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="model.KEY=VALUE",
        help="override a configuration value, e.g. --set model.bin_size=64 (repeatable)",
    )
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None, help="default: what the engine picks")
    parser.add_argument("--threads", type=int, default=None, help="framework threads (default: the engine's)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.backend and args.backends:
        parser.error("--backend and --backends: give one of them")
    backends = (args.backends or args.backend or "tensorflow").split(",")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"--backends: {', '.join(unknown)} not among {', '.join(BACKENDS)}")
    for name in ("elements", "events", "steps", "top"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")

    spec = {
        key: getattr(args, key)
        for key in ("elements", "events", "steps", "warmup", "precision", "top", "by", "set", "device", "threads")
    }
    spec["only"] = [t for t in args.only.split(",") if t]
    results, failed = [], False
    for backend in backends:
        try:
            require_backend(backend)
        except HepbenchError as e:  # MissingExtra: say so and go on with the others
            print(f"{backend}: not installed ({e})", flush=True)
            continue
        for r in run_worker({**spec, "backend": backend}, __file__):
            if "failed" in r:
                print(f"{backend}: {r['failed']}", flush=True)
                failed = True
            else:
                print_result(r, args.by)
                results.append(r)
    if args.json:
        write_json(args.json, results)
    if failed or not results:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
