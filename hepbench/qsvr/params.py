"""Checks of QSVR parameters and data: each failure names the parameter and what is wrong.

The scalar checks are the core's (hepbench.core.checks), named here for the estimators that use
them as `params.<check>`; the checks of X and y are QSVR's own.
"""

from __future__ import annotations

import numpy as np

from hepbench.core.checks import choice, finite_number, int_at_least, positive_number, seed_or_none
from hepbench.core.errors import ParameterError

__all__ = [
    "ParameterError",
    "choice",
    "features",
    "finite_number",
    "int_at_least",
    "positive_number",
    "seed_or_none",
    "targets",
]


def features(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """X as a finite 2-D float array (n_samples, n_features)."""
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a numeric 2-D array") from None
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ParameterError(f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ParameterError(f"{name} contains NaN or infinite values ({int(np.sum(~np.isfinite(X)))} of {X.size})")
    if n_features is not None and X.shape[1] != n_features:
        raise ParameterError(f"{name} has {X.shape[1]} features, the model was fitted with {n_features}")
    return X


def targets(y, n_samples: int, name: str = "y") -> np.ndarray:
    """y as a finite 1-D float array with one value per row of X."""
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a numeric 1-D array") from None
    if y.ndim == 2 and y.shape[1] == 1:  # a column vector, as some pipelines pass it
        y = y[:, 0]
    if y.ndim != 1:
        raise ParameterError(f"{name} must be 1-D (n_samples,), got shape {y.shape}")
    if len(y) != n_samples:
        raise ParameterError(f"{name} has {len(y)} values but X has {n_samples} rows")
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"{name} contains NaN or infinite values ({int(np.sum(~np.isfinite(y)))} of {y.size})")
    return y
