"""Combining annealer samples into one set of SVR coefficients (the seven rules of docs/qubo.md).

The M lowest-energy unique samples are kept (`top_unique`); each is scored on the training set
and the rules give weights (non-negative, summing to 1) for averaging their α and α̂:

  inverse_mse              w ∝ 1/MSE
  softmax_inverse_mse      w = softmax(1/MSE)
  inverse_logcosh          w ∝ 1/log-cosh
  softmax_inverse_logcosh  w = softmax(1/log-cosh)       (the poster's "QSVR" row)
  best                     the sample with the lowest training MSE (ties: the lower energy)
  mean                     uniform 1/M
  lowest_energy            the lowest-energy sample
"""

from __future__ import annotations

import numpy as np

RULES = (
    "inverse_mse",
    "softmax_inverse_mse",
    "inverse_logcosh",
    "softmax_inverse_logcosh",
    "best",
    "mean",
    "lowest_energy",
)
LOSS_FLOOR = 1e-300  # a perfect fit (loss 0) gets weight 1/1e-300 instead of inf: the limit, still finite


def top_unique(bits: np.ndarray, energies: np.ndarray, top_m: int) -> tuple[np.ndarray, np.ndarray]:
    """The `top_m` lowest-energy distinct rows of bits (R, n), sorted by energy (ties: bit order)."""
    unique, first = np.unique(np.asarray(bits), axis=0, return_index=True)
    unique_energies = np.asarray(energies, dtype=float)[first]
    order = np.argsort(unique_energies, kind="stable")[:top_m]
    return unique[order], unique_energies[order]


def log_cosh(residual: np.ndarray) -> np.ndarray:
    """log(cosh(r)) without overflow: |r| + log1p(exp(−2|r|)) − log 2."""
    a = np.abs(residual)
    return a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0)


def training_losses(predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: (MSE, mean log-cosh) of predictions (M, N) against y (N,)."""
    residual = predictions - y
    return (residual**2).mean(-1), log_cosh(residual).mean(-1)


def _inverse(loss: np.ndarray) -> np.ndarray:
    return 1.0 / np.maximum(loss, LOSS_FLOOR)


def normalised(values: np.ndarray) -> np.ndarray:
    return values / values.sum()


def softmax(values: np.ndarray) -> np.ndarray:
    """Numerically stable: the max is subtracted before exp (1/MSE can be in the thousands)."""
    e = np.exp(values - values.max())
    return e / e.sum()


def _one_hot(index: int, size: int) -> np.ndarray:
    w = np.zeros(size)
    w[index] = 1.0
    return w


def rule_weights(mse: np.ndarray, logcosh: np.ndarray, energies: np.ndarray) -> dict[str, np.ndarray]:
    """The weights (M,) of every rule, from the samples' training MSE, log-cosh and energy."""
    mse, logcosh, energies = (np.asarray(a, dtype=float) for a in (mse, logcosh, energies))
    M = len(mse)
    # Ties: "best" takes the lower energy among equal MSEs, "lowest_energy" the lower MSE.
    by_energy = np.lexsort((mse, energies))[0]
    by_mse = np.lexsort((energies, mse))[0]
    return {
        "inverse_mse": normalised(_inverse(mse)),
        "softmax_inverse_mse": softmax(_inverse(mse)),
        "inverse_logcosh": normalised(_inverse(logcosh)),
        "softmax_inverse_logcosh": softmax(_inverse(logcosh)),
        "best": _one_hot(by_mse, M),
        "mean": np.full(M, 1.0 / M),
        "lowest_energy": _one_hot(by_energy, M),
    }
