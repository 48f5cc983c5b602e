"""HEPscore's statistics block (`wl-stats`): avg, median, min, max, count of per-copy values.

Two spellings, each kept exactly as its reports have always had it: `stats` (mlpf-bmk: the block
HEPscore's own workloads write, None for no values) and `stats_with_std` (qsvr-bmk and hpo-bmk:
the same plus the population standard deviation, every value a float).
"""
from __future__ import annotations

import statistics
from typing import Iterable

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
    return {"avg": float(v.mean()), "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()),
            "count": int(v.size), "std": float(v.std(ddof=0))}
