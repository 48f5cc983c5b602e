"""R² under the two argument orders, and the best/worst/mean/std summary the study reports.

The study computed `r2_score(y_pred, y_true)` (arguments swapped); the correct order is
`r2_score(y_true, y_pred)`. Both are kept selectable so the published table can be reproduced
and the correct numbers reported beside it (docs/qubo.md).
"""

from __future__ import annotations

import math

import numpy as np

CONVENTIONS = ("correct", "swapped")
STD_DEFINITION = "population standard deviation (numpy ddof=0), as np.std in the study's notebooks"


def r2(y_true, y_pred, convention: str = "correct") -> float:
    """Coefficient of determination; `swapped` treats the predictions as the truth, as the study did."""
    from sklearn.metrics import r2_score

    if convention == "correct":
        return float(r2_score(y_true, y_pred))
    if convention == "swapped":
        return float(r2_score(y_pred, y_true))
    raise ValueError(f"r2 convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")


def r2_both(y_true, y_pred) -> dict[str, float]:
    """{'correct': ..., 'swapped': ...}: one fit gives both, so every run records both."""
    return {c: r2(y_true, y_pred, c) for c in CONVENTIONS}


def summary(values) -> dict:
    """best / worst / mean / std (population) / median / count of R² values; JSON-safe."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("no R² values to summarise")
    out = {
        "best": float(v.max()),
        "worst": float(v.min()),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=0)),
        "median": float(np.median(v)),
        "count": int(v.size),
    }
    # R² of a constant prediction against a constant truth is not finite: refuse to write NaN.
    if not all(math.isfinite(x) for x in out.values()):
        raise ValueError("R² values are not all finite")
    return out
