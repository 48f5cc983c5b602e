"""Checks of QSVR parameters and data: each failure names the parameter and what is wrong."""
from __future__ import annotations

import numbers

import numpy as np

from hepbench.core.errors import UsageError


class ParameterError(UsageError, ValueError):
    """A bad QSVR parameter or bad X/y. A ValueError too, as scikit-learn expects of estimators."""


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def finite_float(name: str, value) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def seed_or_none(name: str, value):
    if value is None:
        return None
    return positive_int(name, value, minimum=0)


def choice(name: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


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
