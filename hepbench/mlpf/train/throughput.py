"""Throughput arithmetic: timed windows of training steps, with the clock injectable for tests.

The benchmark's number is defined here and nowhere else:

    events/s of a window = real events trained in the window / wall seconds of the window

A window's wall time runs from just before its first step fetches its batch to the moment its last
step's losses are on the host (the step is synchronised by reading the loss), so input stalls
count and nothing runs after the clock stops. Tracing/compilation and warm-up steps happen before
the first window and validation after the last; neither is inside any window. A copy's rate is
its events over its seconds summed over all windows.

How far to trust the number (`stability`, from the report's window entries): a 95 % confidence
interval of the score (each copy's error from the spread of its windows' work rates, copies
combined in quadrature), the coefficient of variation of the window rates, the first window's
work rate relative to the later ones' and the fraction of padded slots that held real elements
(docs/training.md).

This module knows nothing about TensorFlow: a step is any callable returning a `StepOutcome`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hepbench.core.errors import HepbenchError
from hepbench.core.stats import RatioEstimate, cv_percent, ratio_estimate, sum_interval

DEFINITION = (
    "train = sum over copies of (real training events in the timed windows / wall seconds of those "
    "windows). A window's wall time runs from just before its first step fetches a batch to the "
    "moment its last step's losses are on the host; graph tracing/compilation, the warm-up steps and "
    "validation are outside every window. Events are real events (never padding rows or repeated "
    "steps); elements/s count real detector elements and padded slots separately."
)


class NonFiniteLoss(HepbenchError):
    """A training or validation loss became NaN or infinite: the benchmark run (or HPO trial) is invalid."""


@dataclass(frozen=True)
class StepOutcome:
    """What one training step did: its loss and the work in its batch."""

    loss: float
    events: int  # real events in the batch
    real_elements: int  # detector elements, after truncation
    padded_elements: int  # element slots the model computed (batch x padded length)
    flops: float = 0.0  # model FLOPs of the step (hepbench.mlpf.model.flops)


@dataclass
class Window:
    """One timed window. `seconds` is its wall time. `step_seconds` sums its steps' shares: a step's
    share runs from the end of the previous step (the window's start, for the first) to the moment
    its loss is on the host, so it includes fetching the step's batch, and the shares tile the
    window (step_seconds equals seconds; mean_step_seconds is seconds per step)."""

    window: int
    events: int = 0
    steps: int = 0
    real_elements: int = 0
    padded_elements: int = 0
    flops: float = 0.0
    seconds: float = 0.0
    step_seconds: float = 0.0
    loss: float | None = None
    start_time: float = 0.0  # unix time (for logs); rates use the monotonic clock
    stop_time: float = 0.0

    def add(self, outcome: StepOutcome, seconds: float) -> None:
        self.steps += 1
        self.events += outcome.events
        self.real_elements += outcome.real_elements
        self.padded_elements += outcome.padded_elements
        self.flops += outcome.flops
        self.step_seconds += seconds
        self.loss = outcome.loss

    @property
    def events_per_second(self) -> float:
        return _rate(self.events, self.seconds)

    def to_dict(self) -> dict:
        return {
            "window": self.window,
            "events": self.events,
            "steps": self.steps,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "mean_step_seconds": self.step_seconds / self.steps if self.steps else 0.0,
            "real_elements": self.real_elements,
            "padded_elements": self.padded_elements,
            "real_elements_per_second": _rate(self.real_elements, self.seconds),
            "padded_elements_per_second": _rate(self.padded_elements, self.seconds),
            "flops_per_second": _rate(self.flops, self.seconds),
            "loss": self.loss,
            "start_time": self.start_time,
            "stop_time": self.stop_time,
        }


@dataclass
class Warmup:
    steps: int = 0
    events: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"steps": self.steps, "events": self.events, "seconds": self.seconds}


def _rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else 0.0


def totals(windows: list[Window]) -> dict | None:
    """A copy's training totals over its windows (None without windows)."""
    if not windows:
        return None
    seconds = sum(w.seconds for w in windows)
    steps = sum(w.steps for w in windows)
    out = {
        "events": sum(w.events for w in windows),
        "steps": steps,
        "seconds": seconds,
        "mean_step_seconds": sum(w.step_seconds for w in windows) / steps if steps else 0.0,
        "real_elements": sum(w.real_elements for w in windows),
        "padded_elements": sum(w.padded_elements for w in windows),
        "flops": sum(w.flops for w in windows),
        "final_loss": windows[-1].loss,
    }
    out["events_per_second"] = _rate(out["events"], seconds)
    out["real_elements_per_second"] = _rate(out["real_elements"], seconds)
    out["padded_elements_per_second"] = _rate(out["padded_elements"], seconds)
    out["flops_per_second"] = _rate(out["flops"], seconds)
    return out


CONFIDENCE_LEVEL = 0.95
INTERVAL_METHOD = (
    "each copy's rate sum(events)/sum(seconds) over its windows, with the relative standard error of its "
    "work rate r = sum(p)/sum(t) (p: padded elements of a window, t: its seconds; ratio estimator "
    "sqrt(sum((p_i - r*t_i)^2)/(n-1))/(sqrt(n)*mean(t))/r); copies' errors added in quadrature; "
    "Student t quantile with Welch-Satterthwaite degrees of freedom"
)


def _work(windows: list[dict]) -> list[float]:
    """Each window's work: its padded element slots (what the model computed), or its events where
    a window does not count them."""
    if all(w.get("padded_elements", 0) > 0 for w in windows):
        return [w["padded_elements"] for w in windows]
    return [w["events"] for w in windows]


def copy_estimate(windows: list[dict]) -> RatioEstimate | None:
    """A copy's rate (Σ events / Σ seconds of its windows) and its standard error, None for fewer
    than 2 windows. Every run of a configuration trains the same events in the same windows (same
    seed), so what varies between runs is the machine's speed, not the windows' contents: the
    relative error is that of the work rate Σ padded elements / Σ seconds, in which a window of
    larger events that takes longer in proportion is no deviation at all."""
    work = ratio_estimate(_work(windows), [w["seconds"] for w in windows])
    if work is None or work.rate <= 0:
        return None
    rate = _rate(sum(w["events"] for w in windows), sum(w["seconds"] for w in windows))
    return RatioEstimate(rate=rate, standard_error=work.standard_error * rate / work.rate, samples=work.samples)


def score_interval(copies_windows: list[list[dict]], level: float = CONFIDENCE_LEVEL) -> dict | None:
    """The confidence interval of the score (Σ over copies of events/seconds of their windows) from
    the copies' window entries (Window.to_dict()); None unless every copy has at least 2 windows:
    one window gives no estimate of how much a window's time varies."""
    estimates = [copy_estimate(ws) for ws in copies_windows]
    if not estimates or any(e is None for e in estimates):
        return None
    interval = sum_interval(estimates, level)
    return {
        "level": level,
        "low": interval.low,
        "high": interval.high,
        "half_width": interval.half_width,
        "half_width_percent": interval.half_width_percent,
        "degrees_of_freedom": interval.degrees_of_freedom,
        "method": INTERVAL_METHOD,
    }


def first_window_ratio(copies_windows: list[list[dict]]) -> float | None:
    """The first windows' work rate over the later windows', copies pooled: (Σ work / Σ seconds of
    every copy's window 1) / (the same over every copy's windows 2..n), work being padded elements
    (events where a window does not count them), so that the ratio shows the warm-up, not which
    events fell into window 1. 1 when the first window runs as fast as the rest; None unless every
    copy has at least 2 windows."""
    if not copies_windows or any(len(ws) < 2 for ws in copies_windows):
        return None
    work = [_work(ws) for ws in copies_windows]
    first = _rate(sum(w[0] for w in work), sum(ws[0]["seconds"] for ws in copies_windows))
    rest = _rate(sum(sum(w[1:]) for w in work), sum(w["seconds"] for ws in copies_windows for w in ws[1:]))
    return first / rest if rest > 0 else None


def real_element_fraction(copies_windows: list[list[dict]]) -> float | None:
    """Real detector elements / padded element slots over every copy's windows (1: no padding);
    None without padded slots."""
    padded = sum(w["padded_elements"] for ws in copies_windows for w in ws)
    return sum(w["real_elements"] for ws in copies_windows for w in ws) / padded if padded > 0 else None


def stability(copies_windows: list[list[dict]]) -> dict:
    """The report's figures on how far to trust the score: confidence_interval, window_cv_percent
    (coefficient of variation of all copies' window rates, %), first_window_ratio and
    real_element_fraction; each None where it cannot be computed."""
    return {
        "confidence_interval": score_interval(copies_windows),
        "window_cv_percent": cv_percent(w["events_per_second"] for ws in copies_windows for w in ws),
        "first_window_ratio": first_window_ratio(copies_windows),
        "real_element_fraction": real_element_fraction(copies_windows),
    }


@dataclass(frozen=True)
class Plan:
    warmup_steps: int
    windows: int
    steps_per_window: int

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.windows < 1 or self.steps_per_window < 1:
            raise ValueError(f"invalid plan {self}")


@dataclass
class TrainingTimer:
    """Runs a Plan over a stream of batches. `windows` holds every completed window, also after a
    failure, so a failure report can still show what was measured.

    `before_window(n)` runs just before window n's clock starts and `after_window(n)` just after it
    stops (an energy meter reads its counters there: hepbench.core.energy), so neither is timed."""

    plan: Plan
    clock: Callable[[], float] = time.perf_counter
    wall_clock: Callable[[], float] = time.time
    before_window: Callable[[int], None] | None = None
    after_window: Callable[[int], None] | None = None
    warmup: Warmup = field(default_factory=Warmup)
    windows: list[Window] = field(default_factory=list)

    def run(
        self,
        batches: Iterator,
        step: Callable[[object], StepOutcome],
        on_step: Callable[[Window, int], None] | None = None,
        on_window: Callable[[Window], None] | None = None,
    ) -> list[Window]:
        """`step(batch)` must return only once the step's work is done (it reads the loss)."""
        start = self.clock()
        for i in range(self.plan.warmup_steps):
            outcome = step(next(batches))
            self._check(outcome, f"warm-up step {i + 1}")
            self.warmup.steps += 1
            self.warmup.events += outcome.events
        self.warmup.seconds = self.clock() - start

        for index in range(1, self.plan.windows + 1):
            if self.before_window is not None:
                self.before_window(index)
            window = Window(window=index, start_time=self.wall_clock())
            t0 = previous = self.clock()
            for i in range(self.plan.steps_per_window):
                outcome = step(next(batches))
                now = self.clock()
                self._check(outcome, f"window {index}, step {i + 1}")
                # The step's share includes fetching its batch: the windows tile the time exactly.
                window.add(outcome, now - previous)
                previous = now
                if on_step is not None:
                    on_step(window, i + 1)
            window.seconds = previous - t0
            window.stop_time = self.wall_clock()
            if self.after_window is not None:
                self.after_window(index)
            self.windows.append(window)
            if on_window is not None:
                on_window(window)
        return self.windows

    def _check(self, outcome: StepOutcome, where: str) -> None:
        if not math.isfinite(outcome.loss):
            seen = self.warmup.events + sum(w.events for w in self.windows)
            raise NonFiniteLoss(
                f"training loss became {outcome.loss} at {where} (after {seen} events); the run is invalid"
            )
