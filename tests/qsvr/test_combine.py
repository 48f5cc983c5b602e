"""The seven combination rules and the selection of the lowest-energy unique samples."""

from __future__ import annotations

import numpy as np
import pytest

from hepbench.qsvr.combine import RULES, log_cosh, rule_weights, softmax, top_unique, training_losses


def test_rule_names_are_stable():
    assert RULES == (
        "inverse_mse",
        "softmax_inverse_mse",
        "inverse_logcosh",
        "softmax_inverse_logcosh",
        "best",
        "mean",
        "lowest_energy",
    )


def test_top_unique_keeps_the_lowest_distinct_samples():
    bits = np.array([[1, 0], [0, 1], [1, 0], [1, 1], [0, 0]], dtype=np.uint8)
    energies = np.array([0.5, -1.0, 0.5, 2.0, 0.0])
    kept, kept_energies = top_unique(bits, energies, 3)
    np.testing.assert_array_equal(kept, [[0, 1], [0, 0], [1, 0]])
    np.testing.assert_array_equal(kept_energies, [-1.0, 0.0, 0.5])
    assert len(top_unique(bits, energies, 10)[0]) == 4  # fewer distinct samples than top_m


def test_weights_are_as_defined():
    mse = np.array([0.04, 0.01, 0.02, 0.05])
    logcosh = mse / 2.1
    energies = np.array([-3.0, -2.5, -2.0, -1.0])
    w = rule_weights(mse, logcosh, energies)
    assert tuple(w) == RULES
    for rule, weights in w.items():
        assert weights.shape == (4,) and np.all(weights >= 0), rule
        assert weights.sum() == pytest.approx(1.0), rule
    np.testing.assert_allclose(w["inverse_mse"], (1 / mse) / (1 / mse).sum())
    np.testing.assert_allclose(w["inverse_logcosh"], (1 / logcosh) / (1 / logcosh).sum())
    np.testing.assert_allclose(w["softmax_inverse_mse"], np.exp(1 / mse) / np.exp(1 / mse).sum())
    np.testing.assert_array_equal(w["best"], [0, 1, 0, 0])
    np.testing.assert_array_equal(w["lowest_energy"], [1, 0, 0, 0])
    np.testing.assert_allclose(w["mean"], 0.25)


def test_extreme_losses_stay_finite():
    """1/MSE in the millions and a perfect fit (MSE 0) give finite weights summing to 1."""
    for mse in (np.array([1e-7, 2e-7, 1e-3]), np.array([0.0, 1e-3, 0.0]), np.array([1e300, 1e300])):
        w = rule_weights(mse, mse, np.arange(len(mse), dtype=float))
        for rule, weights in w.items():
            assert np.all(np.isfinite(weights)) and weights.sum() == pytest.approx(1.0), (rule, mse)
    w = rule_weights(np.array([0.0, 1e-3, 0.0]), np.ones(3), np.zeros(3))
    np.testing.assert_allclose(w["inverse_mse"], [0.5, 0, 0.5], atol=1e-12)
    np.testing.assert_allclose(softmax(np.array([1e6, 1e6 - 1])), [1 / (1 + np.e**-1), 1 / (1 + np.e)])


def test_ties_and_one_sample():
    w = rule_weights(np.array([0.1, 0.1]), np.array([0.1, 0.1]), np.array([-1.0, -2.0]))
    np.testing.assert_array_equal(w["best"], [0, 1])  # equal MSE: the lower energy
    w = rule_weights(np.array([0.3]), np.array([0.1]), np.array([5.0]))
    assert all(weights.tolist() == [1.0] for weights in w.values())


def test_losses():
    pred = np.array([[0.0, 1.0], [1.0, 1.0]])
    mse, lc = training_losses(pred, np.array([0.0, 1.0]))
    np.testing.assert_allclose(mse, [0.0, 0.5])
    np.testing.assert_allclose(lc, [0.0, np.log(np.cosh(1.0)) / 2])
    assert log_cosh(np.array([1e4]))[0] == pytest.approx(1e4 - np.log(2))  # no overflow
