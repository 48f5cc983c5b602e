"""The throughput arithmetic with a fake clock: warm-up exclusion, windows, real vs padded counts."""
from __future__ import annotations

import math

import pytest

from hepbench.core.stats import stats
from hepbench.mlpf.train.throughput import NonFiniteLoss, Plan, StepOutcome, TrainingTimer, totals


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_step(clock: FakeClock, durations, losses=None, events=2, real=700, padded=1280, flops=10.0):
    """A step that advances the clock by the next duration and reports a fixed batch."""
    durations, losses = iter(durations), iter(losses or [])

    def step(batch) -> StepOutcome:
        clock.now += next(durations)
        return StepOutcome(loss=next(losses, 1.0), events=events, real_elements=real, padded_elements=padded,
                           flops=flops)

    return step


def run(plan, durations, **kw):
    clock = FakeClock()
    timer = TrainingTimer(plan, clock=clock, wall_clock=clock)
    timer.run(iter(range(10**6)), make_step(clock, durations, **kw))
    return timer


def test_warmup_is_not_timed_and_windows_tile_the_rest():
    # Warm-up steps are slow (tracing leftovers); they must not touch the windows' rates.
    timer = run(Plan(warmup_steps=2, windows=2, steps_per_window=3), [50.0, 20.0, 1, 1, 2, 2, 2, 2])
    assert timer.warmup.steps == 2 and timer.warmup.events == 4 and timer.warmup.seconds == 70.0
    first, second = timer.windows
    assert (first.events, first.steps, first.seconds) == (6, 3, 4.0)
    assert (second.events, second.steps, second.seconds) == (6, 3, 6.0)
    assert first.events_per_second == pytest.approx(1.5)
    assert second.events_per_second == pytest.approx(1.0)
    # The copy's rate is events over seconds of all windows, not the mean of the window rates.
    t = totals(timer.windows)
    assert t["events"] == 12 and t["seconds"] == 10.0 and t["events_per_second"] == pytest.approx(1.2)
    assert t["mean_step_seconds"] == pytest.approx(10.0 / 6)


def test_real_and_padded_elements_are_counted_separately():
    timer = run(Plan(0, 1, 4), [0.5] * 4, real=1000, padded=2560, flops=3e9)
    d = timer.windows[0].to_dict()
    assert d["real_elements"] == 4000 and d["padded_elements"] == 4 * 2560
    assert d["real_elements_per_second"] == pytest.approx(2000.0)
    assert d["padded_elements_per_second"] == pytest.approx(5120.0)
    assert d["flops_per_second"] == pytest.approx(6e9)


def test_partial_batches_count_their_real_events():
    timer = run(Plan(0, 1, 3), [1.0] * 3, events=1)
    assert timer.windows[0].events == 3


def test_window_times_use_the_monotonic_clock_and_record_wall_times():
    clock, wall = FakeClock(), iter([1000.0, 1010.0])
    timer = TrainingTimer(Plan(0, 1, 2), clock=clock, wall_clock=lambda: next(wall))
    timer.run(iter(range(9)), make_step(clock, [2.0, 3.0]))
    w = timer.windows[0].to_dict()
    assert (w["seconds"], w["start_time"], w["stop_time"]) == (5.0, 1000.0, 1010.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_stops_the_run_and_keeps_completed_windows(bad):
    clock = FakeClock()
    timer = TrainingTimer(Plan(1, 3, 2), clock=clock, wall_clock=clock)
    with pytest.raises(NonFiniteLoss, match=r"window 2, step 1 \(after 6 events\)"):
        timer.run(iter(range(99)), make_step(clock, [1.0] * 9, losses=[3.0, 2.0, 1.0, bad]))
    assert len(timer.windows) == 1


def test_nan_during_warmup_is_reported_as_warmup():
    clock = FakeClock()
    with pytest.raises(NonFiniteLoss, match="warm-up step 2"):
        TrainingTimer(Plan(2, 1, 1), clock=clock).run(iter(range(9)), make_step(clock, [1.0] * 9, [1.0, math.nan]))


def test_stats_block():
    assert stats([3.0, 1.0, 2.0, 10.0]) == {"avg": 4.0, "median": 2.5, "min": 1.0, "max": 10.0, "count": 4}
    assert stats([]) is None


def test_invalid_plan_is_refused():
    with pytest.raises(ValueError):
        Plan(0, 0, 1)
