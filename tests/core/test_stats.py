"""HEPscore's statistics block in its two spellings."""
from __future__ import annotations

import pytest

from hepbench.core.stats import stats, stats_with_std


def test_stats_is_hepscores_block():
    assert stats([3.0, 1.0, 2.0, 10.0]) == {"avg": 4.0, "median": 2.5, "min": 1.0, "max": 10.0, "count": 4}


def test_stats_of_nothing_is_none():
    assert stats([]) is None and stats(iter(())) is None


def test_stats_with_std_adds_the_population_std_and_gives_floats():
    s = stats_with_std([1, 2, 3, 4])
    assert s == {"avg": 2.5, "median": 2.5, "min": 1.0, "max": 4.0, "count": 4, "std": pytest.approx(1.25 ** 0.5)}
    assert all(type(s[k]) is float for k in ("avg", "median", "min", "max", "std")) and type(s["count"]) is int


def test_stats_with_std_of_one_value_has_std_zero():
    assert stats_with_std([7.5]) == {"avg": 7.5, "median": 7.5, "min": 7.5, "max": 7.5, "count": 1, "std": 0.0}


def test_stats_with_std_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        stats_with_std([])
