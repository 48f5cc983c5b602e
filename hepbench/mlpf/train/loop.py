"""The training loop, top to bottom: set-up → tracing → numerics check → warming → warm-up →
timed windows → validation → result.

`benchmark` is the loop of a benchmark copy, a Mirrored copy and a Horovod rank alike (they differ
only in their engine, hepbench.mlpf.engines); an HPO trial (hepbench.hpo.trainable) uses the same
set-up (`set_up`, `DataSource`, `trace`) and `mean_loss` for its epochs. What the benchmark's number
means, and the timer that measures it, live in hepbench.mlpf.train.throughput.

Every batch shape (events, padded length) the warm-up steps and the windows will see is known
before the clock starts (the pipeline is deterministic for a seed), and each is traced and then
executed once before the first window: a framework's one-time work for a shape (compilation,
kernel selection, primitive caches, allocator growth) happens on its first execution, and would
otherwise land inside a timed window. Validation does the same before its timed part.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from hepbench.mlpf.config import Config, ModelConfig
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES
from hepbench.mlpf.data.pipeline import Batches, EpochBatches
from hepbench.mlpf.engines.base import Engine, StepResult
from hepbench.mlpf.engines.ceiling import Ceiling, measure
from hepbench.mlpf.model.flops import training_flops
from hepbench.mlpf.train import numerics
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
        return Batches(
            self.data,
            "train",
            data,
            bin_size=cfg.model.bin_size,
            num_workers=self.num_workers,
            worker_index=self.worker_index,
            repeat=True,
        )

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
    compile_seconds: float | None = None  # tracing the train step for every shape of the run
    warmed_shapes: list[tuple[int, int]] | None = None  # (events, padded length), each run once before the clock
    warm_seconds: float | None = None  # the all-padding steps that ran them (warm_train)
    validation: dict | None = None
    numerics: numerics.NumericsCheck | None = None  # the arithmetic checked before the clock (copy 0, rank 0)
    ceiling: Ceiling | None = None  # a CPU's matmul ceiling, measured before the clock (bench.ceiling_seconds)


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


def trace(
    engine: Engine,
    train_batch,
    eval_batch=None,
    clock: Callable[[], float] = time.perf_counter,
    shapes: Iterable[tuple[int, int]] = (),
) -> float:
    """Compile the train step (and the eval step, given a batch) without running them, then the
    train step for each further (events, padded length) in `shapes`; the seconds."""
    start = clock()
    engine.trace_train(train_batch)
    if eval_batch is not None:
        engine.trace_eval(eval_batch)
    shapes = list(shapes)
    if shapes:
        for batch in engine.train_batches(zero_batch(events, length) for events, length in shapes):
            engine.trace_train(batch)
    return clock() - start


def warm_train(engine: Engine, shapes: Iterable[tuple[int, int]], heartbeat: Callable[[], None] = lambda: None) -> None:
    """One train step on an all-padding batch of each (events, padded length), then the training
    state put back: each shape's first execution (kernel selection, primitive caches, allocator
    growth, XLA's lazy compilation) happens here, and the run trains as if it had not. The state
    (Engine.state) holds the weights, the optimizer's variables with its iteration count and the
    dropout seed states; an all-padding batch has loss 0 and zero gradients. (Not so the PyTorch
    engine with model.dropout > 0: Keras's torch dropout draws from torch's global generator.)"""
    shapes = list(shapes)
    if not shapes:
        return
    batches = list(engine.train_batches(zero_batch(events, length) for events, length in shapes))
    saved = engine.state()
    for batch in batches:
        engine.train_step(batch)
        heartbeat()
    engine.load_state(saved)


def first_share(source: DataSource, cfg: Config, replicas: int = 1) -> dict:
    """The first training batch's first data.batch_size events (a mirrored run's: replica 0's share),
    from a fresh pipeline, which yields the run's batches for a seed; read without prefetch threads."""
    quiet = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, prefetch=0))
    batch = next(iter(source.training(quiet, replicas)))
    return {k: v[: cfg.data.batch_size] for k, v in batch.items()}


def batch_shapes(batches, steps: int) -> list[tuple[int, int]]:
    """The (events, padded length) of the first `steps` batches of a fresh pipeline, in order.

    The pipeline is deterministic for a seed, so a fresh one yields the batches the run will see.
    A Batches with `shapes()` says them without reading any record; another iterable is read.
    """
    shapes = batches.shapes() if hasattr(batches, "shapes") else (b["X"].shape[:2] for b in batches)
    return [(int(events), int(length)) for events, length in itertools.islice(shapes, steps)]


def distinct(shapes: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """`shapes` without repeats, in the order of first appearance."""
    return list(dict.fromkeys(shapes))


def describe(shapes: list[tuple[int, int]]) -> str:
    """Shapes for the narration: lengths alone when all batches hold the same number of events
    ("lengths 3840, 4480"), else events x length ("2 x 3840, 1 x 4480")."""
    if len({events for events, _ in shapes}) == 1:
        return "length " + str(shapes[0][1]) if len(shapes) == 1 else "lengths " + ", ".join(str(n) for _, n in shapes)
    return ", ".join(f"{events} x {length}" for events, length in shapes)


def zero_batch(events: int, length: int) -> dict:
    """An all-padding pipeline batch of this shape: compiles and warms a step without any data."""
    return {
        "X": np.zeros((events, length, NUM_X_FEATURES), np.float32),
        "y": np.zeros((events, length, NUM_Y_FEATURES), np.float32),
        "n_elements": np.zeros(events, np.int32),
        "n_elements_orig": np.zeros(events, np.int32),
    }


def mean_loss(
    step: Callable[[object], StepResult], batches: Iterable, where: str | None = None
) -> tuple[float | None, int]:
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
        return StepOutcome(
            loss=result.loss,
            events=result.events,
            real_elements=result.real_elements,
            padded_elements=result.padded_elements,
            flops=flops,
        )

    return step


def validate(
    engine: Engine,
    batches,
    n_batches: int,
    clock: Callable[[], float] = time.perf_counter,
    shapes: Iterable[tuple[int, int]] = (),
) -> dict:
    """Inference over the test split, timed on its own: the eval step traced for each (events,
    padded length) in `shapes` (every shape of the n_batches) and run once on an all-padding batch
    of it (untimed: its first execution), then n_batches timed."""
    zeros = list(engine.eval_batches(zero_batch(events, length) for events, length in shapes))
    t0 = clock()
    for batch in zeros:
        engine.trace_eval(batch)
    compile_seconds = clock() - t0
    for batch in zeros:  # eval steps change no state
        engine.eval_step(batch)
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


def benchmark(
    engine: Engine,
    cfg: Config,
    source: DataSource,
    measured: Measurement,
    validation_events: int,
    hooks: Hooks = Hooks(),
    check_numerics: bool = True,
) -> Measurement:
    """Train as `measured.timer`'s plan says and validate on `validation_events` test events.
    `check_numerics`: this process checks the arithmetic before the clock (copy 0, rank 0); every
    rank of a job then follows rank 0's verdict.

    Raises on failure (NumericsMismatch when the device's arithmetic is not the host's, NonFiniteLoss
    when a loss is NaN or infinite); `measured` keeps what was measured until then.
    """
    timer, clock = measured.timer, measured.timer.clock
    plan = timer.plan

    # Set-up: framework, model, optimizer and steps; the data; every shape of the run.
    set_up(engine, cfg, measured)
    # The peak of the copy's FLOPs utilisation on a CPU: its own framework, threads and CPUs, now.
    if measured.devices[0]["type"] == "cpu" and cfg.bench.ceiling_seconds > 0:
        measured.ceiling = measure(engine.backend()["name"], cfg.train.precision, cfg.bench.ceiling_seconds)
        hooks.say(measured.ceiling.describe())
    batches = source.training(cfg, engine.replicas)
    t0 = clock()
    # data.cache "memory" (a GPU run's default): every event decoded now, none read inside a window.
    if cached := (batches.fill_cache() if hasattr(batches, "fill_cache") else 0):
        hooks.say(f"cached {cached} training events in memory in {clock() - t0:.1f} s")
    train = engine.train_batches(batches)
    first = next(train)
    run_shapes = batch_shapes(
        source.training(cfg, engine.replicas), plan.warmup_steps + plan.windows * plan.steps_per_window
    )
    shapes = distinct(run_shapes)  # the first is `first`'s
    name = measured.devices[0]["name"]
    hooks.say(
        f"{engine.replicas} x {name}: tracing the training step ..."
        if engine.replicas > 1
        else f"{name}: tracing the training step ..."
    )
    measured.compile_seconds = trace(engine, first, clock=clock, shapes=shapes[1:])
    hooks.heartbeat()
    hooks.say(
        f"traced {len(shapes)} batch shape(s) in {measured.compile_seconds:.1f} s; "
        f"{plan.warmup_steps} warm-up step(s), then {plan.windows} windows of {plan.steps_per_window} steps"
    )

    # Numerics: the first warm-up batch on the device against the host CPU in float32, from the
    # initial weights, before anything is timed.
    if check_numerics:
        measured.numerics = numerics.check(
            engine, first_share(source, cfg, engine.replicas), cfg, clock, hooks.heartbeat
        )
        hooks.heartbeat()
        hooks.say(measured.numerics.describe())
    if not engine.from_rank0(measured.numerics.passed if check_numerics else True):
        raise numerics.refusal(measured.numerics)

    # Warming: each shape's first execution before the clock starts. A warm-up step runs its own
    # shape; every other shape runs once on an all-padding batch, undone.
    by_warmup = set(run_shapes[: plan.warmup_steps])
    padding = [s for s in shapes if s not in by_warmup]
    t0 = clock()
    warm_train(engine, padding, hooks.heartbeat)
    measured.warm_seconds, measured.warmed_shapes = clock() - t0, shapes
    how = [f"{len(padding)} on all-padding steps in {measured.warm_seconds:.1f} s"] if padding else []
    if len(padding) < len(shapes):
        how.append(f"{len(shapes) - len(padding)} by the warm-up steps")
    hooks.say(f"warmed {len(shapes)} batch shape(s) ({describe(shapes)}): {', '.join(how)}")

    # Warm-up, then the timed windows (the first batch, traced on, is the first warm-up step's).
    step = outcomes(engine, cfg.model)

    def beating_step(batch) -> StepOutcome:
        outcome = step(batch)
        hooks.heartbeat()  # warm-up steps included
        return outcome

    def on_window(w: Window) -> None:
        # A step's share of its window includes fetching its batch (throughput.Window).
        hooks.say(
            f"window {w.window}/{plan.windows}: {w.events} events in {w.seconds:.2f} s = "
            f"{w.events_per_second:.4g} events/s  (mean step {w.step_seconds / w.steps:.3f} s, "
            f"loss {w.loss:.4g})"
        )

    timer.run(itertools.chain([first], train), beating_step, hooks.on_step, on_window)

    # Validation: inference over the test split, outside every window, every shape warmed first.
    n_val = math.ceil(validation_events / cfg.data.batch_size)
    if n_val:
        shapes = distinct(batch_shapes(source.validation(cfg), n_val))
        v = measured.validation = validate(engine, engine.eval_batches(source.validation(cfg)), n_val, clock, shapes)
        hooks.say(
            f"validation: {v['events']} events in {v['seconds']:.2f} s = {v['events_per_second']:.4g} "
            f"events/s (loss {v['loss']:.4g}; {len(shapes)} shape(s) warmed: {describe(shapes)})"
        )
        if not math.isfinite(v["loss"]):
            loss, v["loss"] = v["loss"], None  # JSON has no NaN
            raise NonFiniteLoss(f"validation loss is {loss}; the run is invalid")
    return measured
