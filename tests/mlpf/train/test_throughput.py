"""The throughput arithmetic with a fake clock: warm-up exclusion, windows, real vs padded counts, and
the score's confidence interval, first-window ratio and padding fraction from the windows."""

from __future__ import annotations

import math

import pytest

from hepbench.core.stats import stats
from hepbench.mlpf.train.throughput import (
    NonFiniteLoss,
    Plan,
    StepOutcome,
    TrainingTimer,
    first_window_ratio,
    real_element_fraction,
    score_interval,
    stability,
    totals,
)


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
        return StepOutcome(
            loss=next(losses, 1.0), events=events, real_elements=real, padded_elements=padded, flops=flops
        )

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
    with pytest.raises(ValueError, match=r"invalid plan Plan\(warmup_steps=0, windows=0, steps_per_window=1\)"):
        Plan(0, 0, 1)


T975_2, T975_4 = 4.302653, 2.776445  # Student t quantiles (0.975; 2 and 4 degrees of freedom)


def windows_of(durations_per_window, steps=3, **kw):
    """One copy's window entries from a fake clock: each window's steps take equal shares of its time."""
    durations = [d / steps for d in durations_per_window for _ in range(steps)]
    timer = run(
        Plan(warmup_steps=1, windows=len(durations_per_window), steps_per_window=steps), [30.0] + durations, **kw
    )
    return [w.to_dict() for w in timer.windows]


def test_the_interval_of_one_copy_is_the_t_interval_of_its_mean_window_time():
    windows = windows_of([4.0, 5.0, 6.0])  # 6 events per window: mean time 5 s, s = 1 s
    ci = score_interval([windows])
    rate = 18 / 15  # the copy's rate, as totals() has it
    assert (ci["low"] + ci["high"]) / 2 == pytest.approx(totals_rate(windows)) == pytest.approx(rate)
    half = T975_2 * rate * 1.0 / (math.sqrt(3) * 5.0)
    assert ci["half_width"] == pytest.approx(half, rel=1e-6)
    assert ci["half_width_percent"] == pytest.approx(100 * half / rate, rel=1e-6)
    assert ci["level"] == 0.95 and ci["degrees_of_freedom"] == pytest.approx(2) and "ratio estimator" in ci["method"]


def test_the_warmup_does_not_widen_the_interval():
    steady = score_interval([windows_of([5.0, 5.0, 5.0])])
    assert steady["half_width"] == pytest.approx(0.0, abs=1e-12) and steady["low"] == pytest.approx(1.2)


def test_copies_add_their_rates_and_their_errors_in_quadrature():
    a, b = windows_of([4.0, 5.0, 6.0]), windows_of([4.0, 5.0, 6.0])
    ci = score_interval([a, b])
    one = score_interval([a])
    assert (ci["low"] + ci["high"]) / 2 == pytest.approx(2.4)
    # Two equal copies: error x sqrt(2), degrees of freedom 2 + 2.
    assert ci["degrees_of_freedom"] == pytest.approx(4)
    assert ci["half_width"] == pytest.approx(one["half_width"] / T975_2 * T975_4 * math.sqrt(2), rel=1e-6)
    # A copy with steady windows adds its rate, not its (zero) error.
    steady = score_interval([a, windows_of([2.0, 2.0, 2.0])])
    assert steady["half_width"] == pytest.approx(one["half_width"]) and steady["low"] == pytest.approx(one["low"] + 3.0)


def test_fewer_than_two_windows_give_no_interval_and_no_first_window_ratio():
    one = windows_of([5.0])
    assert score_interval([one]) is None and score_interval([]) is None
    assert score_interval([windows_of([4.0, 6.0]), one]) is None  # every copy needs 2
    assert first_window_ratio([one]) is None
    assert stability([one])["window_cv_percent"] is None


def test_the_first_window_ratio_pools_the_copies():
    slow_start = windows_of([6.0, 5.0, 5.0])
    assert first_window_ratio([slow_start]) == pytest.approx((6 / 6.0) / (12 / 10.0))
    assert first_window_ratio([slow_start, windows_of([5.0, 6.0, 4.0])]) == pytest.approx((12 / 11.0) / (24 / 20.0))


def test_stability_figures():
    windows = windows_of([4.0, 5.0, 6.0], real=700, padded=1280)
    fig = stability([windows, windows_of([5.0, 5.0, 5.0], real=1000, padded=1280)])
    assert set(fig) == {"confidence_interval", "window_cv_percent", "first_window_ratio", "real_element_fraction"}
    rates = [1.5, 1.2, 1.0, 1.2, 1.2, 1.2]
    mean = sum(rates) / 6
    std = math.sqrt(sum((r - mean) ** 2 for r in rates) / 5)
    assert fig["window_cv_percent"] == pytest.approx(100 * std / mean)
    assert fig["real_element_fraction"] == pytest.approx(1700 / 2560)
    assert real_element_fraction([[]]) is None  # nothing padded, nothing to say


def totals_rate(windows):
    return sum(w["events"] for w in windows) / sum(w["seconds"] for w in windows)


def work_windows(work_per_window, seconds_per_window, events=2):
    """Windows of one step each whose padded elements and durations are given."""
    clock, works, seconds = FakeClock(), iter(work_per_window), iter(seconds_per_window)

    def step(batch) -> StepOutcome:
        clock.now += next(seconds)
        return StepOutcome(loss=1.0, events=events, real_elements=1, padded_elements=next(works))

    timer = TrainingTimer(Plan(0, len(work_per_window), 1), clock=clock, wall_clock=clock)
    timer.run(iter(range(99)), step)
    return [w.to_dict() for w in timer.windows]


def test_windows_of_larger_events_that_take_longer_in_proportion_are_no_deviation():
    # The same events every run: a window of twice the padded work taking twice as long is the
    # machine running at one speed, although its events/s is half the others'.
    windows = work_windows([1280, 2560, 1280], [1.0, 2.0, 1.0])
    ci = score_interval([windows])
    assert ci["half_width"] == pytest.approx(0.0, abs=1e-12) and ci["low"] == pytest.approx(6 / 4.0)
    assert first_window_ratio([windows]) == pytest.approx(1.0)
    assert stability([windows])["window_cv_percent"] == pytest.approx(
        100 * math.sqrt(1 / 3) / (5 / 3)
    )  # events/s do differ


def test_the_work_rate_sets_the_relative_error_and_events_the_centre():
    windows = work_windows([1000, 1000, 1000, 1000], [1.0, 1.1, 0.9, 1.0], events=3)
    ci = score_interval([windows])
    rate = 12 / 4.0
    times = [1.0, 1.1, 0.9, 1.0]
    s = math.sqrt(sum((t - 1.0) ** 2 for t in times) / 3)
    assert (ci["low"] + ci["high"]) / 2 == pytest.approx(rate)
    assert ci["half_width_percent"] == pytest.approx(100 * 3.182446 * s / (math.sqrt(4) * 1.0), rel=1e-5)  # t(0.975, 3)


def test_windows_without_element_counts_fall_back_to_events():
    windows = [{"events": 6, "seconds": t, "padded_elements": 0} for t in (4.0, 5.0, 6.0)]
    assert score_interval([windows])["half_width"] == pytest.approx(T975_2 * 1.2 / (math.sqrt(3) * 5.0), rel=1e-6)
