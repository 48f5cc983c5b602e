"""SVR quantities from dual coefficients: the RBF kernel, the bias b and the predictions."""

from __future__ import annotations

import numpy as np


def rbf_kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    """exp(−γ‖a−b‖²) for every row pair, (len(A), len(B))."""
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.exp(-gamma * np.maximum(sq, 0.0))  # rounding can make ‖a−a‖² slightly negative


def intercept(alpha, alpha_hat, kernel, y, epsilon: float, C: float) -> np.ndarray:
    """The bias b, vectorised over leading axes of alpha/alpha_hat (…, N).

    The textbook KKT values: the mean over free coefficients of y_i − ε − f0_i (α_i in (0, C)) and
    y_i + ε − f0_i (α̂_i in (0, C)), with f0 = Σ_j (α_j − α̂_j) k_ij. When no coefficient is free,
    b is the mean residual mean(y − f0): annealed coefficients need not satisfy the KKT conditions,
    so the libsvm midpoint of the KKT bounds can come from crossed bounds, while the mean residual
    is always defined and is the least-squares bias for the given coefficients (all-zero
    coefficients give mean(y)).
    """
    alpha = np.asarray(alpha, dtype=float)
    alpha_hat = np.asarray(alpha_hat, dtype=float)
    y = np.asarray(y, dtype=float)
    residual = y - (alpha - alpha_hat) @ np.asarray(kernel, dtype=float)  # kernel is symmetric
    tol = 1e-9 * max(C, 1.0)  # the encoded values are sums of powers: exact zeros, C up to rounding
    free_a = (alpha > tol) & (alpha < C - tol)
    free_h = (alpha_hat > tol) & (alpha_hat < C - tol)
    total = np.where(free_a, residual - epsilon, 0.0).sum(-1) + np.where(free_h, residual + epsilon, 0.0).sum(-1)
    count = free_a.sum(-1) + free_h.sum(-1)
    fallback = residual.mean(-1)
    return np.where(count > 0, total / np.maximum(count, 1), fallback)


def predict(dual_coef, bias, kernel_rows) -> np.ndarray:
    """f(x) = Σ_n d_n k(x_n, x) + b. dual_coef (…, N), bias (…), kernel_rows (N, n_x) → (…, n_x)."""
    return np.asarray(dual_coef) @ kernel_rows + np.asarray(bias)[..., None]
