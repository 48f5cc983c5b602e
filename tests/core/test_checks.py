"""The library-side parameter checks: values they return, errors naming the parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepbench.core.checks import choice, finite_number, int_at_least, positive_number, seed_or_none
from hepbench.core.errors import ParameterError, UsageError


def test_a_parameter_error_is_a_usage_error_and_a_value_error():
    assert issubclass(ParameterError, UsageError) and issubclass(ParameterError, ValueError)


def test_accepted_values_come_back_as_python_numbers():
    assert int_at_least("K", np.int64(3)) == 3 and type(int_at_least("K", np.int64(3))) is int
    assert int_at_least("n", 0, minimum=0) == 0
    assert positive_number("B", 2) == 2.0 and type(positive_number("B", 2)) is float
    assert positive_number("xi", 0, allow_zero=True) == 0.0
    assert finite_number("k0", np.float32(-1.5)) == -1.5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: int_at_least("K", 0), "K must be an integer >= 1, got 0"),
        (lambda: int_at_least("K", True), "K must be an integer >= 1, got True"),
        (lambda: int_at_least("K", 2.0), "K must be an integer >= 1, got 2.0"),
        (lambda: int_at_least("n_chunks", 1, minimum=2), "n_chunks must be an integer >= 2, got 1"),
        (lambda: positive_number("gamma", 0), "gamma must be a finite number > 0, got 0"),
        (lambda: positive_number("xi", -0.1, allow_zero=True), "xi must be a finite number >= 0, got -0.1"),
        (lambda: positive_number("B", math.inf), "B must be a finite number > 0, got inf"),
        (lambda: positive_number("B", "2"), "B must be a finite number > 0, got '2'"),
        (lambda: finite_number("k0", math.nan), "k0 must be a finite number, got nan"),
        (lambda: finite_number("k0", False), "k0 must be a finite number, got False"),
        (lambda: finite_number("k0", 10**400), f"k0 must be a finite number, got {10**400}"),
        (lambda: seed_or_none("seed", -1), "seed must be an integer >= 0, got -1"),
        (lambda: choice("combine", "mean", ("best", "median")), "combine must be one of best, median; got 'mean'"),
    ],
)
def test_rejected_values_name_the_parameter(call, message):
    with pytest.raises(ParameterError) as e:
        call()
    assert str(e.value) == message


def test_seed_or_none_passes_none_through():
    assert seed_or_none("seed", None) is None and seed_or_none("seed", 7) == 7
