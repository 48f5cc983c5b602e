"""Statistics of measured values: HEPscore's `wl-stats` block, and confidence intervals of rates.

`wl-stats` (avg, median, min, max, count of per-copy values) has two spellings, each kept exactly as
its reports have always had it: `stats` (mlpf-bmk: the block HEPscore's own workloads write, None
for no values) and `stats_with_std` (qsvr-bmk and hpo-bmk: the same plus the population standard
deviation, every value a float).

For intervals: Student's t quantiles (`t_quantile`), the coefficient of variation (`cv_percent`),
the ratio estimator of a rate Σ amount / Σ seconds with its standard error (`ratio_estimate`) and
the interval of a sum of independent rates (`sum_interval`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def stats(values: Iterable[float]) -> dict | None:
    """avg, median, min, max, count (None for no values)."""
    values = list(values)
    if not values:
        return None
    return {
        "avg": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "count": len(values),
    }


def stats_with_std(values: Iterable[float]) -> dict:
    """avg, median, min, max, count and std (ddof 0), as floats; ValueError for no values."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        raise ValueError("stats_with_std of no values")
    return {
        "avg": float(v.mean()),
        "median": float(np.median(v)),
        "min": float(v.min()),
        "max": float(v.max()),
        "count": int(v.size),
        "std": float(v.std(ddof=0)),
    }


# --- Confidence intervals -------------------------------------------------------------------------
# Student's t from the regularised incomplete beta function (math.lgamma and a continued fraction:
# Numerical Recipes, 3rd ed., §6.4), so that the core needs nothing beyond numpy.

_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) by the modified Lentz method (converges for x < (a+1)/(a+b+2))."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= c * d
        if abs(c * d - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta I_{x}({a}, {b}) did not converge")


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0 or not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete_beta needs a, b > 0 and 0 <= x <= 1, not a={a}, b={b}, x={x}")
    if x in (0.0, 1.0):
        return x
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom, t >= 0."""
    return 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` > 0 degrees of freedom (any real df; math.inf: the
    normal quantile), by bisection on the upper tail to a relative 1e-12."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, not p={p}, df={df}")
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while t_upper_tail(hi, df) > tail:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):  # 2^-200 of the bracket: also ends for p = 0.5, whose quantile is 0
        if hi - lo <= 1e-12 * hi:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_upper_tail(mid, df) > tail else (lo, mid)
    return 0.5 * (lo + hi)


def cv_percent(values: Iterable[float]) -> float | None:
    """Coefficient of variation, 100 x sample standard deviation (ddof 1) / mean; None for fewer
    than 2 values or a mean of 0."""
    v = np.asarray(list(values), dtype=float)
    if v.size < 2 or v.mean() == 0:
        return None
    return float(100.0 * v.std(ddof=1) / v.mean())


@dataclass(frozen=True)
class RatioEstimate:
    """A rate Σ amount / Σ seconds over n samples (windows) and its standard error."""

    rate: float
    standard_error: float
    samples: int

    @property
    def degrees_of_freedom(self) -> int:
        return self.samples - 1


def ratio_estimate(amounts: Sequence[float], seconds: Sequence[float]) -> RatioEstimate | None:
    """The ratio estimator R = Σa / Σt of paired samples (a_i, t_i) and its linearised standard error

        SE(R) = sqrt(Σ (a_i - R t_i)² / (n - 1)) / (sqrt(n) · mean(t))

    (W. G. Cochran, Sampling Techniques, 3rd ed., §6.3-6.4, without finite-population correction).
    None for fewer than 2 samples or no time. With equal amounts a_i = a the relative error is
    that of the mean time: SE(R)/R = s(t) / (sqrt(n) · mean(t))."""
    if len(amounts) != len(seconds):
        raise ValueError(f"ratio_estimate needs as many amounts as times, not {len(amounts)} and {len(seconds)}")
    a, t = np.asarray(amounts, dtype=float), np.asarray(seconds, dtype=float)
    if a.size < 2 or t.sum() <= 0:
        return None
    rate = float(a.sum() / t.sum())
    residuals = a - rate * t
    se = math.sqrt(float(residuals @ residuals) / (a.size - 1)) / (math.sqrt(a.size) * float(t.mean()))
    return RatioEstimate(rate=rate, standard_error=se, samples=int(a.size))


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval centre ± half_width at confidence `level`."""

    level: float
    centre: float
    half_width: float
    degrees_of_freedom: float

    @property
    def low(self) -> float:
        return self.centre - self.half_width

    @property
    def high(self) -> float:
        return self.centre + self.half_width

    @property
    def half_width_percent(self) -> float:
        return 100.0 * self.half_width / self.centre if self.centre else math.inf


def sum_interval(estimates: Sequence[RatioEstimate], level: float = 0.95) -> Interval:
    """The interval of Σ rates of independent estimates: standard errors add in quadrature and the
    t quantile takes the Welch-Satterthwaite degrees of freedom

        ν = (Σ SE_c²)² / Σ (SE_c⁴ / ν_c)

    (one estimate: its own n - 1; all errors 0: Σ ν_c, the interval being 0 wide anyway)."""
    if not estimates:
        raise ValueError("sum_interval of no estimates")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, not {level}")
    variance = sum(e.standard_error**2 for e in estimates)
    spread = sum(e.standard_error**4 / e.degrees_of_freedom for e in estimates)
    if len(estimates) == 1 or spread == 0:
        df = float(sum(e.degrees_of_freedom for e in estimates))
    else:
        df = variance**2 / spread
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(variance)
    return Interval(level=level, centre=sum(e.rate for e in estimates), half_width=half, degrees_of_freedom=df)
