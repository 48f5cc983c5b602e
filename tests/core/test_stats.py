"""HEPscore's statistics block in its two spellings; t quantiles and the intervals of rates."""

from __future__ import annotations

import math

import pytest

from hepbench.core.stats import (
    RatioEstimate,
    cv_percent,
    incomplete_beta,
    ratio_estimate,
    stats,
    stats_with_std,
    sum_interval,
    t_quantile,
)


def test_stats_is_hepscores_block():
    assert stats([3.0, 1.0, 2.0, 10.0]) == {"avg": 4.0, "median": 2.5, "min": 1.0, "max": 10.0, "count": 4}


def test_stats_of_nothing_is_none():
    assert stats([]) is None and stats(iter(())) is None


def test_stats_with_std_adds_the_population_std_and_gives_floats():
    s = stats_with_std([1, 2, 3, 4])
    assert s == {"avg": 2.5, "median": 2.5, "min": 1.0, "max": 4.0, "count": 4, "std": pytest.approx(1.25**0.5)}
    assert all(type(s[k]) is float for k in ("avg", "median", "min", "max", "std")) and type(s["count"]) is int


def test_stats_with_std_of_one_value_has_std_zero():
    assert stats_with_std([7.5]) == {"avg": 7.5, "median": 7.5, "min": 7.5, "max": 7.5, "count": 1, "std": 0.0}


def test_stats_with_std_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        stats_with_std([])


# Student's t quantiles: the values every table prints (e.g. NIST/SEMATECH e-Handbook, table 1.4.2.7).
@pytest.mark.parametrize(
    "df, expected",
    [
        (1, 12.706),
        (2, 4.303),
        (3, 3.182),
        (4, 2.776),
        (9, 2.262),
        (10, 2.228),
        (29, 2.045),
        (30, 2.042),
        (100, 1.984),
    ],
)
def test_t_quantile_matches_the_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_tends_to_the_normal_one_and_is_symmetric():
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.959966, abs=1e-5)
    assert t_quantile(0.995, 1) == pytest.approx(63.657, abs=1e-3)  # far tail: the bracket must grow
    assert t_quantile(0.025, 4) == pytest.approx(-t_quantile(0.975, 4))
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-12)


def test_t_quantile_takes_fractional_degrees_of_freedom():
    # Welch-Satterthwaite gives non-integer df: the quantile lies between its neighbours'.
    assert t_quantile(0.975, 2) > t_quantile(0.975, 2.5) > t_quantile(0.975, 3)
    assert t_quantile(0.975, 1.5) == pytest.approx(6.01666, abs=1e-4)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (0.975, 0), (0.975, -1)])
def test_t_quantile_refuses_bad_arguments(p, df):
    with pytest.raises(ValueError, match="t_quantile needs"):
        t_quantile(p, df)


def test_incomplete_beta_known_values():
    assert incomplete_beta(1.0, 1.0, 0.3) == pytest.approx(0.3)  # uniform
    assert incomplete_beta(2.0, 1.0, 0.5) == pytest.approx(0.25)  # x^a for b = 1
    assert incomplete_beta(0.5, 0.5, 0.5) == pytest.approx(0.5)  # symmetric
    assert incomplete_beta(3.0, 4.0, 0.0) == 0.0 and incomplete_beta(3.0, 4.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="0 <= x <= 1, not a=1.0, b=1.0, x=1.5"):
        incomplete_beta(1.0, 1.0, 1.5)


def test_cv_percent_uses_the_sample_standard_deviation():
    assert cv_percent([9.0, 10.0, 11.0]) == pytest.approx(10.0)  # s = 1 (ddof 1), mean 10
    assert cv_percent([5.0, 5.0]) == 0.0
    assert cv_percent([5.0]) is None and cv_percent([]) is None and cv_percent([1.0, -1.0]) is None


def test_ratio_estimate_with_equal_amounts_is_the_error_of_the_mean_time():
    e = ratio_estimate([6, 6, 6], [4.0, 5.0, 6.0])
    assert e.rate == pytest.approx(18 / 15) and e.samples == 3 and e.degrees_of_freedom == 2
    # SE(R)/R = s(t) / (sqrt(n) mean(t)) = 1 / (sqrt(3) * 5)
    assert e.standard_error / e.rate == pytest.approx(1 / (math.sqrt(3) * 5))


def test_ratio_estimate_with_unequal_amounts_follows_the_residuals():
    a, t = [4, 6, 5, 7], [2.0, 2.5, 2.5, 3.5]
    e = ratio_estimate(a, t)
    rate = sum(a) / sum(t)
    residuals = [ai - rate * ti for ai, ti in zip(a, t)]
    expected = math.sqrt(sum(r * r for r in residuals) / 3) / (2 * sum(t) / 4)
    assert e.rate == pytest.approx(rate) and e.standard_error == pytest.approx(expected)
    # Windows in exact proportion (a constant rate) have no error at all.
    assert ratio_estimate([2, 4, 6], [1.0, 2.0, 3.0]).standard_error == pytest.approx(0.0, abs=1e-15)


def test_ratio_estimate_needs_two_samples_and_time():
    assert ratio_estimate([6], [5.0]) is None and ratio_estimate([], []) is None
    assert ratio_estimate([1, 1], [0.0, 0.0]) is None
    with pytest.raises(ValueError, match="as many amounts as times"):
        ratio_estimate([1, 2], [1.0])


def test_sum_interval_of_one_estimate_is_its_t_interval():
    e = RatioEstimate(rate=2.0, standard_error=0.1, samples=5)
    iv = sum_interval([e])
    assert iv.degrees_of_freedom == pytest.approx(4)
    assert iv.half_width == pytest.approx(2.776445 * 0.1, rel=1e-6)
    assert (iv.low, iv.high) == (pytest.approx(2.0 - iv.half_width), pytest.approx(2.0 + iv.half_width))
    assert iv.half_width_percent == pytest.approx(100 * iv.half_width / 2.0)


def test_sum_interval_adds_errors_in_quadrature_with_welch_satterthwaite_df():
    a = RatioEstimate(rate=1.0, standard_error=0.3, samples=3)
    b = RatioEstimate(rate=2.0, standard_error=0.4, samples=5)
    iv = sum_interval([a, b], level=0.9)
    df = (0.3**2 + 0.4**2) ** 2 / (0.3**4 / 2 + 0.4**4 / 4)
    assert iv.centre == 3.0 and iv.level == 0.9 and iv.degrees_of_freedom == pytest.approx(df)
    assert iv.half_width == pytest.approx(t_quantile(0.95, df) * 0.5)
    # Two equal copies: the df add up (2 + 2), the error grows by sqrt(2).
    twin = sum_interval([a, a])
    assert twin.degrees_of_freedom == pytest.approx(4)
    assert twin.half_width == pytest.approx(2.776445 * 0.3 * math.sqrt(2), rel=1e-6)
    # A copy without spread adds its rate but neither error nor degrees of freedom.
    exact = RatioEstimate(rate=5.0, standard_error=0.0, samples=3)
    assert sum_interval([a, exact]).half_width == pytest.approx(sum_interval([a]).half_width)
    assert sum_interval([exact, exact]).half_width == 0.0


def test_sum_interval_refuses_nothing_and_bad_levels():
    with pytest.raises(ValueError, match="no estimates"):
        sum_interval([])
    with pytest.raises(ValueError, match="confidence level"):
        sum_interval([RatioEstimate(1.0, 0.1, 3)], level=95)
