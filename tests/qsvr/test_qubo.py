"""The SVR dual as a QUBO: xᵀQx is the energy of docs/qubo.md, and the exact optimum of a tiny problem is the
SVR solution where the two problems coincide."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.svm import SVR

from hepbench.qsvr.dual import intercept, rbf_kernel
from hepbench.qsvr.qubo import build_qubo, decode, encode, energy, max_coefficient, powers, qubo_energy, to_bqm
from hepbench.qsvr.samplers import Exact


def random_problem(rng, N, gamma=0.5):
    X = rng.normal(size=(N, 3))
    return rbf_kernel(X, X, gamma), rng.normal(size=N)


def test_powers():
    np.testing.assert_allclose(powers(0.5, 3, 0.005), 0.5 ** (np.arange(3) - 0.005))
    np.testing.assert_allclose(powers(2.0, 2, 0), [1.0, 2.0])
    assert max_coefficient(0.5, 3, 0) == pytest.approx(1.75)


@pytest.mark.parametrize(
    "N, K, B, k0", [(1, 1, 0.5, 0.0), (3, 2, 0.5, 0.005), (5, 3, 2.0, 1.0), (20, 3, 0.5, 0.005), (7, 4, 0.3, -0.5)]
)
def test_xQx_is_the_energy(N, K, B, k0):
    rng = np.random.default_rng(N * 100 + K)
    kernel, y = random_problem(rng, N)
    xi, epsilon = rng.uniform(0, 1), rng.uniform(0, 0.5)
    Q = build_qubo(kernel, y, B=B, K=K, k0=k0, xi=xi, epsilon=epsilon)
    assert Q.shape == (2 * K * N, 2 * K * N)
    assert np.all(np.tril(Q, -1) == 0)
    bits = rng.integers(0, 2, size=(500, 2 * K * N))
    alpha, alpha_hat = decode(bits, B, K, k0, N)
    np.testing.assert_allclose(
        qubo_energy(Q, bits), energy(alpha, alpha_hat, kernel, y, epsilon, xi), rtol=1e-12, atol=1e-10
    )
    # dimod reads the matrix the same way
    np.testing.assert_allclose(to_bqm(Q).energies((bits, range(2 * K * N))), qubo_energy(Q, bits), atol=1e-10)


def test_decode_layout():
    """index = block*(K*N) + n*K + k: block 0 is α, 1 is α̂."""
    N, K, B, k0 = 3, 2, 0.5, 0.0
    bits = np.zeros(2 * K * N, dtype=np.uint8)
    bits[0 * K * N + 1 * K + 0] = 1  # α_1, k = 0 → B^0 = 1
    bits[1 * K * N + 2 * K + 1] = 1  # α̂_2, k = 1 → B^1 = 0.5
    alpha, alpha_hat = decode(bits, B, K, k0, N)
    np.testing.assert_array_equal(alpha, [0, 1, 0])
    np.testing.assert_array_equal(alpha_hat, [0, 0, 0.5])
    per_sample = bits.reshape(2, N, K)
    np.testing.assert_array_equal(encode(per_sample[0], per_sample[1]), bits)
    assert decode(np.stack([bits, bits]), B, K, k0, N)[0].shape == (2, N)


def tiny_problem_on_the_grid(epsilon=0.02, gamma=0.5, B=0.5, K=2, k0=0.005):
    """N = 3 with an SVR solution d* = α − α̂ on the encoding grid, free coefficients and b* = 0.

    y is built from d* so that the KKT conditions hold with b = 0: y_n = (k d*)_n + ε sign(d*_n).
    With b = 0 the constraint's multiplier is 0, so the penalised QUBO and the constrained SVR
    dual have the same minimiser (Σd* = 0 makes the penalty vanish), and as it lies on the grid
    it is also the minimiser of the discretised problem.
    """
    p = powers(B, K, k0)
    X = np.array([[0.0], [1.0], [2.5]])
    kernel = rbf_kernel(X, X, gamma)
    d = np.array([p[0], -p[1], -p[1]])  # Σd = 0 as p[0] = 2 p[1] for B = 1/2
    y = kernel @ d + epsilon * np.sign(d)
    return X, y, kernel, d


def exact_optimum(kernel, y, *, B, K, k0, xi, epsilon):
    Q = build_qubo(kernel, y, B=B, K=K, k0=k0, xi=xi, epsilon=epsilon)
    bits, energies = Exact().sample(Q, num_reads=1)
    alpha, alpha_hat = decode(bits[0], B, K, k0, len(y))
    return alpha, alpha_hat, energies[0]


def test_exact_optimum_is_the_discretised_minimum():
    """The exact solver on 12 variables finds the minimum of E over the coefficient grid, enumerated
    directly with `energy` (independent of Q): the same discretised problem, solved classically."""
    rng = np.random.default_rng(3)
    kernel, y = random_problem(rng, 3)
    B, K, k0, xi, epsilon = 0.5, 2, 0.005, 0.01, 0.1
    alpha, alpha_hat, e = exact_optimum(kernel, y, B=B, K=K, k0=k0, xi=xi, epsilon=epsilon)
    grid = np.array([np.dot(bits, powers(B, K, k0)) for bits in itertools.product((0, 1), repeat=K)])
    coeffs = np.array(list(itertools.product(grid, repeat=6)))  # 4^6 = 4096 (α1..α3, α̂1..α̂3)
    energies = energy(coeffs[:, :3], coeffs[:, 3:], kernel, y, epsilon, xi)
    best = np.argmin(energies)
    assert e == pytest.approx(energies[best], abs=1e-12)
    np.testing.assert_allclose(alpha, coeffs[best, :3])
    np.testing.assert_allclose(alpha_hat, coeffs[best, 3:])


def test_exact_optimum_matches_sklearn_svr_where_the_problems_coincide():
    """Predictions of the exact QUBO optimum equal sklearn SVR's (tolerance 1e-6: libsvm's stopping
    tolerance, set to 1e-10). Comparable only here: in general the penalty ξ(Σd)² replaces the exact
    constraint (the QUBO optimum then has Σd ≈ b/(2ξ) within the box) and the grid rounds the
    coefficients, so QSVR and SVR differ by more than any fixed tolerance."""
    B, K, k0, xi, epsilon, gamma = 0.5, 2, 0.005, 0.01, 0.02, 0.5
    X, y, kernel, d = tiny_problem_on_the_grid(epsilon, gamma, B, K, k0)
    C = max_coefficient(B, K, k0)
    alpha, alpha_hat, e = exact_optimum(kernel, y, B=B, K=K, k0=k0, xi=xi, epsilon=epsilon)
    np.testing.assert_allclose(alpha - alpha_hat, d, atol=1e-12)
    assert abs(np.sum(alpha - alpha_hat)) < 1e-12  # the equality constraint holds at the optimum
    b = intercept(alpha, alpha_hat, kernel, y, epsilon, C)
    assert b == pytest.approx(0.0, abs=1e-12)

    svr = SVR(kernel="rbf", gamma=gamma, C=C, epsilon=epsilon, tol=1e-10).fit(X, y)
    X_new = np.linspace(-1, 4, 11)[:, None]
    ours = (alpha - alpha_hat) @ rbf_kernel(X, X_new, gamma) + b
    np.testing.assert_allclose(ours, svr.predict(X_new), atol=1e-6)
    np.testing.assert_allclose(svr.dual_coef_[0], d[svr.support_], atol=1e-6)


def test_a_large_penalty_enforces_the_constraint():
    """With ξ large against the energy scale, Σ(α − α̂) = 0 at the exact optimum of any tiny problem
    (Σd is a multiple of the smallest place value, so a violation costs at least ξ·p_min²)."""
    rng = np.random.default_rng(11)
    for _ in range(3):
        kernel, y = random_problem(rng, 3)
        alpha, alpha_hat, _ = exact_optimum(kernel, y, B=0.5, K=2, k0=0.005, xi=100.0, epsilon=0.05)
        assert abs(np.sum(alpha - alpha_hat)) < 1e-9
