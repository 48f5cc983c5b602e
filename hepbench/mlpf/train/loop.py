"""The training loop, top to bottom: set-up → warm-up → timed windows → validation → result.

`benchmark` is the loop of a benchmark copy, a Mirrored copy and a Horovod rank alike (they differ
only in their engine, hepbench.mlpf.engines); an HPO trial (hepbench.hpo.trainable) uses the same
set-up (`set_up`, `DataSource`, `trace`) and `mean_loss` for its epochs. What the benchmark's number
means, and the timer that measures it, live in hepbench.mlpf.train.throughput.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from hepbench.mlpf.config import Config, ModelConfig
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES
from hepbench.mlpf.data.pipeline import Batches, EpochBatches
from hepbench.mlpf.engines.base import Engine, StepResult
from hepbench.mlpf.model.flops import training_flops
from hepbench.mlpf.train.throughput import NonFiniteLoss, StepOutcome, TrainingTimer, Window


@dataclass(frozen=True)
class DataSource:
    """The built data set a loop reads (its data directory), and the shard of its training split
    this process trains on (a Horovod or DDP rank: shard `worker_index` of `num_workers`).
    Batches are the NumPy dicts of hepbench.mlpf.data.pipeline, whichever engine consumes them."""

    data: object
    num_workers: int = 1
    worker_index: int = 0

    def training(self, cfg: Config, replicas: int = 1) -> Batches:
        """Endless training batches of `replicas` x batch_size events (batch_size per replica)."""
        data = dataclasses.replace(cfg.data, batch_size=cfg.data.batch_size * replicas)
        return Batches(self.data, "train", data, bin_size=cfg.model.bin_size, num_workers=self.num_workers,
                       worker_index=self.worker_index, repeat=True)

    def validation(self, cfg: Config) -> Batches:
        """Endless batches of the test split (all of it, whichever shard trains here)."""
        return Batches(self.data, "test", cfg.data, bin_size=cfg.model.bin_size, repeat=True)

    def epoch(self, cfg: Config, split: str, events: int | None) -> EpochBatches:
        """The same batches on every pass: the first `events` events of `split` (all of it with
        None) in whole batches, in file order (or data.shuffle_buffer's first order), read on the
        first pass and kept."""
        count = None if events is None else math.ceil(events / cfg.data.batch_size)
        return EpochBatches(Batches(self.data, split, cfg.data, bin_size=cfg.model.bin_size), count)


@dataclass
class Measurement:
    """What a loop has found out so far; filled as it goes, so a run that fails half-way still
    reports what it measured."""

    timer: TrainingTimer  # warm-up and completed windows; its clock times everything here
    devices: list[dict] | None = None  # Engine.devices()
    software: dict | None = None  # Engine.software()
    parameters: tuple[int, int] | None = None  # (trainable, non-trainable)
    compile_seconds: float | None = None  # tracing the train step
    validation: dict | None = None


@dataclass(frozen=True)
class Hooks:
    """How a loop talks to its caller."""

    say: Callable[[str], None] = lambda text: None  # one line of narration
    heartbeat: Callable[[], None] = lambda: None  # after tracing and every step: a watchdog's sign of life
    on_step: Callable[[Window, int], None] | None = None  # after each timed step (a progress bar)


def set_up(engine: Engine, cfg: Config, measured: Measurement | None = None) -> None:
    """The framework for this process, then the seeded model, optimizer and steps."""
    engine.configure()
    if measured is not None:
        measured.devices, measured.software = engine.devices(), engine.software()
    engine.build(cfg.model, cfg.train)
    if measured is not None:
        measured.parameters = engine.parameter_counts()


def trace(engine: Engine, train_batch, eval_batch=None, clock: Callable[[], float] = time.perf_counter,
          shapes: Iterable[tuple[int, int]] = ()) -> float:
    """Compile the train step (and the eval step, given a batch) without running them, then the
    train step for each further (events, padded length) in `shapes`; the seconds."""
    start = clock()
    engine.trace_train(train_batch)
    if eval_batch is not None:
        engine.trace_eval(eval_batch)
    for events, length in shapes:
        engine.trace_train(zero_batch(events, length))
    return clock() - start


def planned_shapes(batches: Iterable, steps: int) -> list[tuple[int, int]]:
    """The distinct (events, padded length) of the first `steps` pipeline batches, in order.

    The pipeline is deterministic for a seed, so a second pass over the same source sees the
    batches the timed windows will see; an engine that compiles once per shape (JAX, XLA,
    torch.compile) compiles them all before the clock starts.
    """
    seen: dict[tuple[int, int], None] = {}
    for batch in itertools.islice(batches, steps):
        seen.setdefault(tuple(int(d) for d in batch["X"].shape[:2]), None)
    return list(seen)


def zero_batch(events: int, length: int) -> dict:
    """An all-padding pipeline batch of this shape: compiles a step without any data."""
    return {"X": np.zeros((events, length, NUM_X_FEATURES), np.float32),
            "y": np.zeros((events, length, NUM_Y_FEATURES), np.float32),
            "n_elements": np.zeros(events, np.int32), "n_elements_orig": np.zeros(events, np.int32)}


def mean_loss(step: Callable[[object], StepResult], batches: Iterable, where: str | None = None) -> tuple[float | None, int]:
    """(event-weighted mean loss, events) of `step` over `batches`; None without events. With
    `where`, the first non-finite loss raises NonFiniteLoss saying where."""
    total, events = 0.0, 0
    for batch in batches:
        result = step(batch)
        if where is not None and not math.isfinite(result.loss):
            raise NonFiniteLoss(f"loss became {result.loss} at {where}")
        total, events = total + result.loss * result.events, events + result.events
    return (total / events if events else None), events


def outcomes(engine: Engine, model_cfg: ModelConfig) -> Callable[[object], StepOutcome]:
    """The engine's train step as the timer's step: its result plus the model FLOPs it did."""
    flops_per_event: dict[int, int] = {}

    def step(batch) -> StepOutcome:
        result = engine.train_step(batch)
        flops = 0.0
        for part in result.parts:
            if part.padded_length not in flops_per_event:
                flops_per_event[part.padded_length] = training_flops(model_cfg, part.padded_length)
            flops += part.events * flops_per_event[part.padded_length]
        return StepOutcome(loss=result.loss, events=result.events, real_elements=result.real_elements,
                           padded_elements=result.padded_elements, flops=flops)

    return step


def validate(engine: Engine, batches, n_batches: int, clock: Callable[[], float] = time.perf_counter,
             shapes: Iterable[tuple[int, int]] = ()) -> dict:
    """Inference over the test split, timed on its own: trace (the first batch's shape and each
    further one in `shapes`), one untimed batch, then n_batches."""
    first = next(batches)
    t0 = clock()
    engine.trace_eval(first)
    for events, length in shapes:
        engine.trace_eval(zero_batch(events, length))
    compile_seconds = clock() - t0
    engine.eval_step(first)  # first execution: allocations, kernel choice
    t0 = clock()
    loss, events = mean_loss(engine.eval_step, itertools.islice(batches, n_batches))
    seconds = clock() - t0
    return {
        "events": events,
        "steps": n_batches,
        "seconds": seconds,
        "events_per_second": events / seconds if seconds > 0 else 0.0,
        "compile_seconds": compile_seconds,
        "loss": loss,
    }


def benchmark(engine: Engine, cfg: Config, source: DataSource, measured: Measurement, validation_events: int,
              hooks: Hooks = Hooks()) -> Measurement:
    """Train as `measured.timer`'s plan says and validate on `validation_events` test events.

    Raises on failure (NonFiniteLoss when a loss is NaN or infinite); `measured` keeps what was
    measured until then.
    """
    timer, clock = measured.timer, measured.timer.clock
    plan = timer.plan

    # Set-up: framework, model, optimizer and steps; the data; the traced train step.
    set_up(engine, cfg, measured)
    train = engine.train_batches(source.training(cfg, engine.replicas))
    first = next(train)
    name = measured.devices[0]["name"]
    hooks.say(f"{engine.replicas} x {name}: tracing the training step ..." if engine.replicas > 1
              else f"{name}: tracing the training step ...")
    shapes: list[tuple[int, int]] = []
    if engine.compiles_per_shape:  # every shape the warm-up and the windows will see, compiled now
        steps = plan.warmup_steps + plan.windows * plan.steps_per_window
        shapes = planned_shapes(source.training(cfg, engine.replicas), steps)[1:]  # the first is `first`'s
    measured.compile_seconds = trace(engine, first, clock=clock, shapes=shapes)
    hooks.heartbeat()
    hooks.say(f"traced {1 + len(shapes)} batch shape(s) in {measured.compile_seconds:.1f} s; "
              f"{plan.warmup_steps} warm-up step(s), then {plan.windows} windows of {plan.steps_per_window} steps")

    # Warm-up, then the timed windows (the first batch, traced on, is the first warm-up step's).
    step = outcomes(engine, cfg.model)

    def beating_step(batch) -> StepOutcome:
        outcome = step(batch)
        hooks.heartbeat()  # warm-up steps included
        return outcome

    def on_window(w: Window) -> None:
        # A step's share of its window includes fetching its batch (throughput.Window).
        hooks.say(f"window {w.window}/{plan.windows}: {w.events} events in {w.seconds:.2f} s = "
                  f"{w.events_per_second:.4g} events/s  (mean step {w.step_seconds / w.steps:.3f} s, "
                  f"loss {w.loss:.4g})")

    timer.run(itertools.chain([first], train), beating_step, hooks.on_step, on_window)

    # Validation: inference over the test split, outside every window.
    n_val = math.ceil(validation_events / cfg.data.batch_size)
    if n_val:
        shapes = planned_shapes(source.validation(cfg), n_val + 1)[1:] if engine.compiles_per_shape else []
        v = measured.validation = validate(engine, engine.eval_batches(source.validation(cfg)), n_val, clock, shapes)
        hooks.say(f"validation: {v['events']} events in {v['seconds']:.2f} s = {v['events_per_second']:.4g} "
                  f"events/s (loss {v['loss']:.4g})")
        if not math.isfinite(v["loss"]):
            loss, v["loss"] = v["loss"], None  # JSON has no NaN
            raise NonFiniteLoss(f"validation loss is {loss}; the run is invalid")
    return measured
