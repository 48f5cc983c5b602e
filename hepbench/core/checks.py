"""Checks of a library call's parameters: each returns the value, or raises ParameterError naming the
parameter and what is wrong. (The CLI's converters of option text are hepbench.core.cliargs.)"""

from __future__ import annotations

import math
import numbers

from hepbench.core.errors import ParameterError


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_finite(value) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float's range: not usable as a float parameter
        return False


def int_at_least(name: str, value, minimum: int = 1) -> int:
    """An integer (not a bool) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_number(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with allow_zero), as a float."""
    if not (_is_number(value) and _is_finite(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def finite_number(name: str, value) -> float:
    """A finite number (not a bool), as a float."""
    if not (_is_number(value) and _is_finite(value)):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def seed_or_none(name: str, value) -> int | None:
    """None, or an integer >= 0."""
    return None if value is None else int_at_least(name, value, minimum=0)


def choice(name: str, value, allowed) -> str:
    """One of the strings in `allowed`."""
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value
