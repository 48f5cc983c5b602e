#!/usr/bin/env python
"""Where the training loop's time goes beyond the train step: on the same batches, the rate of the
loop's timed window (what `hepbench run` scores) against the step-only rate (what
benchmarks/train_step_speed.py measures: engine.train_step alone on prepared batches), and where
the difference goes.

One process, one engine, the training batches of a built data set as `hepbench run` reads them
(the packaged configuration; --set section.key=value changes it). Each variant trains one untimed
step (as the loop's warm-up) and then times the next --steps batches, always the same ones, from
the same saved engine state:

  step-only           the batches prepared ahead (engine.train_batches) and kept; each step timed alone
  loop                TrainingTimer and loop.outcomes over a fresh pipeline, data.prefetch as configured
  loop, prefetch 0    the same, each batch built by the consumer between steps
  loop, cache memory  the same, the decoded events read once before and kept

A loop window splits into input (waiting for the pipeline's next batch), prepare
(engine.train_batches: conversion or host-device copy), step (engine.train_step) and other (the
rest: outcomes(), the timer, Python between steps). First a cold pass times the loop variant
before any shape has run (the loop before its shapes were warmed): the difference to the warm
loop is the one-time work per shape that landed in a first window. Then every shape is traced
and warmed as the loop does, and the variants alternate for --rounds rounds (the order rotating),
so that a shared machine's noise falls on all of them alike; the figures are sums over the rounds.
The cached variant repeats the same batches only without data.shuffle_buffer (each pass reshuffles).

    python benchmarks/loop_overhead.py [--data-dir work/tfds-s0] [--backend tensorflow] [--device cpu]
        [--threads N] [--steps 12] [--rounds 3] [--set data.prefetch=2 --set train.precision=bf16 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from hepbench.mlpf.engines.backends import BACKENDS, select_backend  # noqa: E402  (imports no framework)


class Timed:
    """An iterator that adds up the seconds spent in its next()."""

    def __init__(self, iterable):
        self.it, self.seconds = iter(iterable), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self.it)
        finally:
            self.seconds += time.perf_counter() - start


class TimedSteps:
    """The engine as loop.outcomes sees it, each train_step's seconds recorded."""

    def __init__(self, engine):
        self.engine, self.times = engine, []

    def train_step(self, batch):
        start = time.perf_counter()
        result = self.engine.train_step(batch)
        self.times.append(time.perf_counter() - start)
        return result


@dataclasses.dataclass
class Figures:
    """One variant's sums over its rounds."""

    events: int = 0
    seconds: float = 0.0  # the windows' (or the steps') wall time
    input: float = 0.0
    prepare: float = 0.0
    step: float = 0.0

    def add(self, other: Figures) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def loop_window(engine, cfg, batches, steps: int) -> tuple[Figures, list[float]]:
    """The loop's way: one untimed step, then a window of `steps` over `batches` (a fresh pipeline)."""
    from hepbench.mlpf.train.loop import outcomes  # after select_backend (see main)
    from hepbench.mlpf.train.throughput import Plan, TrainingTimer

    raw = Timed(batches)
    prepared = Timed(engine.train_batches(raw))
    timed = TimedSteps(engine)
    timer = TrainingTimer(Plan(warmup_steps=1, windows=1, steps_per_window=steps))
    outcome = outcomes(timed, cfg.model)
    before = [0.0, 0.0]  # (raw, prepared) seconds of the warm-up step's fetch, outside the window

    def step(batch):
        if not timed.times:
            before[:] = raw.seconds, prepared.seconds
        return outcome(batch)

    try:
        (window,) = timer.run(prepared, step)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:  # stops the pipeline's prefetch threads now, not at garbage collection
            close()
    raw_s, prepared_s = raw.seconds - before[0], prepared.seconds - before[1]
    step_s = sum(timed.times[1:])
    return Figures(window.events, window.seconds, raw_s, prepared_s - raw_s, step_s), timed.times[1:]


def step_only(engine, prepared: list, steps: int) -> Figures:
    """train_step_speed's way: the steps alone on batches prepared ahead (one untimed step first)."""
    engine.train_step(prepared[0])
    events, seconds = 0, 0.0
    for batch in prepared[1 : steps + 1]:
        start = time.perf_counter()
        result = engine.train_step(batch)  # returns once the loss is on the host
        seconds += time.perf_counter() - start
        events += result.events
    return Figures(events, seconds, step=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT / "work" / "tfds-s0"))
    parser.add_argument("--backend", choices=BACKENDS, default="tensorflow")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="the framework's threads (default: this process's cores, as hepbench run)",
    )
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be >= 1")

    select_backend(args.backend)  # before anything imports keras: the imports below do
    from hepbench.mlpf.config import load_config
    from hepbench.mlpf.engines.backends import make_engine
    from hepbench.mlpf.train.loop import DataSource, batch_shapes, describe, distinct, set_up, trace, warm_train

    cfg = load_config(overrides=args.set)
    source = DataSource(args.data_dir)
    engine = make_engine(args.backend, device=args.device, threads=args.threads)
    set_up(engine, cfg)
    saved = engine.state()
    n = args.steps + 1  # the untimed step, then the timed ones
    batches = list(itertools.islice(iter(source.training(cfg)), n))
    shapes = distinct(batch_shapes(batches, n))
    print(
        f"{args.backend} ({engine.backend()['compile']}) on {engine.devices()[0]['name']}, {args.threads} thread(s); "
        f"{args.steps} timed steps of batch {cfg.data.batch_size}, {len(shapes)} shape(s) ({describe(shapes)}); "
        f"prefetch {cfg.data.prefetch}, cache {cfg.data.cache}",
        flush=True,
    )

    def pipeline(**data):
        changed = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data))
        return iter(DataSource(args.data_dir).training(changed))

    # The cold pass: every shape traced, none run yet (the loop before warming).
    seconds = trace(engine, next(iter(engine.train_batches(batches[:1]))), shapes=shapes[1:])
    cold, cold_times = loop_window(engine, cfg, pipeline(), args.steps)
    print(f"cold pass: traced in {seconds:.1f} s, window {cold.rate:.4g} events/s", flush=True)

    engine.load_state(saved)
    start = time.perf_counter()
    warm_train(engine, shapes)  # already run by the cold pass: this shows what warming costs when warm
    print(f"warmed {len(shapes)} shape(s) in {time.perf_counter() - start:.1f} s", flush=True)
    prepared = list(engine.train_batches(batches))
    cached = DataSource(args.data_dir).training(
        dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, cache="memory"))
    )
    for _ in itertools.islice(iter(cached), n):  # read once: later passes reuse the decoded events
        pass

    variants = {
        "step-only": lambda: (step_only(engine, prepared, args.steps), None),
        "loop": lambda: loop_window(engine, cfg, pipeline(), args.steps),
        "loop, prefetch 0": lambda: loop_window(engine, cfg, pipeline(prefetch=0), args.steps),
        "loop, cache memory": lambda: loop_window(engine, cfg, iter(cached), args.steps),
    }
    totals = {name: Figures() for name in variants}
    warm_times: list[list[float]] = []
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            engine.load_state(saved)  # the same weights, optimizer state and dropout masks every time
            figures, times = variants[name]()
            totals[name].add(figures)
            if name == "loop":
                warm_times.append(times)
            print(f"  round {r + 1} {name:<20} {figures.rate:.4g} events/s", flush=True)

    base = totals["step-only"]
    print(
        f"\n{'variant':<20} {'events/s':>9} {'vs step-only':>12} {'input s':>8} {'prepare s':>9} "
        f"{'step s':>8} {'other s':>8}"
    )
    for name, f in totals.items():
        other = f.seconds - f.input - f.prepare - f.step
        gap = f"{100 * (f.rate / base.rate - 1):+.1f} %" if name != "step-only" else "-"
        print(f"{name:<20} {f.rate:9.4g} {gap:>12} {f.input:8.2f} {f.prepare:9.2f} {f.step:8.2f} {other:8.2f}")
    loop = totals["loop"]
    print(
        f"loop: the steps alone {loop.events / loop.step:.4g} events/s "
        f"({100 * (loop.events / loop.step / base.rate - 1):+.1f} % "
        f"vs step-only: the engine step itself, slower beside the pipeline's threads or not)"
    )

    # The cold pass against the warm loop, step by step (the same batches): one-time work per shape.
    typical = [statistics.median(times) for times in zip(*warm_times)]
    seen = set(batch_shapes(batches, 1))  # the untimed step's shape
    extra = []
    for shape, cold_s, warm_s in zip(batch_shapes(batches[1:], args.steps), cold_times, typical):
        if shape not in seen:
            seen.add(shape)
            extra.append(cold_s - warm_s)
    print(
        f"cold window {cold.rate:.4g} events/s, "
        f"{100 * (cold.rate / (loop.events / loop.seconds) - 1):+.1f} % vs the warm "
        f"loop; a shape's first execution cost {statistics.mean(extra) if extra else 0.0:.3f} s more than later ones "
        f"({len(extra)} new shape(s) in the window)"
    )


if __name__ == "__main__":
    main()
