"""QSVR and QSVREnsemble as scikit-learn regressors: rules, bias, seeds, clone/Pipeline, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from hepbench.core.errors import UsageError
from hepbench.qsvr.combine import RULES
from hepbench.qsvr.dual import intercept, rbf_kernel
from hepbench.qsvr.model import QSVR, QSVREnsemble, chunk_weights

FAST = dict(num_reads=40, num_sweeps=20)


@pytest.fixture(scope="module")
def data():
    """A smooth target of 3 features in [0, 1] (like the quantile-scaled curves)."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = 0.5 + 0.3 * np.sin(3 * X[:, 0]) - 0.2 * X[:, 1] ** 2
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return QSVR(gamma=2.0, seed=1, **FAST).fit(X[:12], y[:12])


def test_fit_predict_score(data, fitted):
    X, y = data
    pred = fitted.predict(X[12:])
    assert pred.shape == (28,) and np.all(np.isfinite(pred))
    assert fitted.score(X[12:], y[12:]) == pytest.approx(r2_score(y[12:], pred))  # R² in the correct order
    assert fitted.score(X[12:], y[12:]) > 0.3
    assert fitted.n_features_in_ == 3 and fitted.C_ == pytest.approx(sum(0.5 ** (k - 0.005) for k in range(3)))


def test_every_rule_predicts_and_behaves_as_defined(data, fitted):
    X, y = data
    all_rules = fitted.predict_rules(X[12:])
    assert tuple(all_rules) == RULES
    for rule in RULES:
        np.testing.assert_array_equal(fitted.predict(X[12:], rule=rule), all_rules[rule])
        assert np.all(np.isfinite(all_rules[rule])), rule
        assert fitted.rule_weights_[rule].sum() == pytest.approx(1.0), rule
    np.testing.assert_array_equal(fitted.predict(X[12:]), all_rules["softmax_inverse_logcosh"])
    assert len(fitted.sample_energies_) == 4 and np.all(np.diff(fitted.sample_energies_) >= 0)

    def sample_prediction(i):
        d = fitted.sample_alpha_[i] - fitted.sample_alpha_hat_[i]
        return d @ rbf_kernel(X[:12], X[12:], 2.0) + fitted.sample_intercepts_[i]

    best = int(np.argmin(fitted.sample_mse_))
    np.testing.assert_allclose(all_rules["best"], sample_prediction(best), atol=1e-12)
    np.testing.assert_allclose(all_rules["lowest_energy"], sample_prediction(0), atol=1e-12)
    mean = fitted.sample_alpha_.mean(0) - fitted.sample_alpha_hat_.mean(0)
    np.testing.assert_allclose(fitted.rule_coefficients_["mean"], mean, atol=1e-12)


def test_same_seed_same_predictions(data):
    X, y = data
    a = QSVR(seed=5, **FAST).fit(X[:10], y[:10]).predict_rules(X)
    b = QSVR(seed=5, **FAST).fit(X[:10], y[:10]).predict_rules(X)
    for rule in RULES:
        np.testing.assert_array_equal(a[rule], b[rule])


def test_bias_textbook_values():
    """b = mean over free coefficients of y − ε − f0 (α free) and y + ε − f0 (α̂ free)."""
    kernel = np.eye(3)
    y = np.array([1.0, 2.0, 3.0])
    alpha, alpha_hat = np.array([0.5, 0.0, 1.0]), np.array([0.0, 0.25, 0.0])  # C = 1: α_2 is at the bound
    expected = np.mean([1.0 - 0.1 - 0.5, 2.0 + 0.1 + 0.25])
    assert intercept(alpha, alpha_hat, kernel, y, 0.1, 1.0) == pytest.approx(expected)


def test_bias_without_free_coefficients():
    """No free coefficient: the mean residual (all zero: mean(y); all at C: mean(y − f0)); never NaN."""
    kernel = rbf_kernel(np.arange(3.0)[:, None], np.arange(3.0)[:, None], 1.0)
    y = np.array([0.2, 0.4, 0.9])
    assert intercept(np.zeros(3), np.zeros(3), kernel, y, 0.1, 1.0) == pytest.approx(y.mean())
    alpha, alpha_hat = np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    assert intercept(alpha, alpha_hat, kernel, y, 0.1, 1.0) == pytest.approx(np.mean(y - kernel @ (alpha - alpha_hat)))
    batch = intercept(np.zeros((5, 3)), np.zeros((5, 3)), kernel, y, 0.1, 1.0)
    np.testing.assert_allclose(batch, y.mean())


def test_fit_whose_optimum_has_no_support_vector():
    """A target inside the ε-tube: every coefficient 0 at the optimum, its predictions = mean(y).
    The weighted rules average in the other samples' non-zero coefficients, which then count as
    free for the bias (the study's recomputation): different, but finite."""
    X = np.array([[0.0], [1.0], [2.0]])
    y = np.array([0.30, 0.32, 0.28])
    model = QSVR(K=2, epsilon=0.5, sampler="exact", num_reads=3).fit(X, y)
    np.testing.assert_array_equal(model.sample_alpha_[0] + model.sample_alpha_hat_[0], 0.0)
    for rule in ("best", "lowest_energy"):
        np.testing.assert_allclose(model.predict(X, rule=rule), y.mean(), atol=1e-12)
    for rule in RULES:
        assert np.all(np.isfinite(model.predict(X, rule=rule)))


def test_sklearn_conventions(data):
    X, y = data
    model = QSVR(K=2, top_m=3, seed=3, **FAST)
    params = model.get_params()
    assert params["K"] == 2 and params["combine"] == "softmax_inverse_logcosh" and params["C"] is None
    copy = clone(model)
    assert copy.get_params() == params and not hasattr(copy, "dual_coef_")
    assert model.set_params(K=3).K == 3
    pipe = make_pipeline(MinMaxScaler(), QSVR(seed=3, **FAST)).fit(X[:12] * 10, y[:12])
    assert np.all(np.isfinite(pipe.predict(X[12:] * 10)))
    pipe.set_params(qsvr__combine="best")
    assert pipe.score(X[12:] * 10, y[12:]) == pytest.approx(
        r2_score(y[12:], pipe[-1].predict(pipe[0].transform(X[12:] * 10), rule="best"))
    )


@pytest.mark.parametrize(
    "param, value, message",
    [
        ("K", 0, "K must be an integer >= 1"),
        ("K", 2.5, "K must be an integer"),
        ("B", 0.0, "B must be"),
        ("B", -1, "B must be"),
        ("num_reads", 0, "num_reads must be an integer >= 1"),
        ("num_sweeps", 0, "num_sweeps"),
        ("top_m", 0, "top_m"),
        ("gamma", 0, "gamma"),
        ("epsilon", -0.1, "epsilon"),
        ("xi", float("nan"), "xi"),
        ("C", 0, "C must be"),
        ("seed", -1, "seed"),
        ("combine", "median", "combine must be one of inverse_mse"),
        ("sampler", "qpu", "sampler must be one of"),
    ],
)
def test_bad_parameters(data, param, value, message):
    X, y = data
    with pytest.raises(UsageError, match=message) as info:
        QSVR(**{**FAST, param: value}).fit(X[:5], y[:5])
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.ones((5, 2)), np.ones(4), "y has 4 values but X has 5 rows"),
        (np.ones(5), np.ones(5), "X must be a non-empty 2-D array"),
        (np.array([[0.0, np.nan], [1.0, 1.0]]), np.ones(2), "X contains NaN"),
        (np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), "y contains NaN"),
        (np.ones((3, 2)), np.ones((3, 2)), "y must be 1-D"),
        (np.ones((1, 2)), np.ones(1), "at least 2 training samples"),
    ],
)
def test_bad_data(X, y, message):
    with pytest.raises(UsageError, match=message):
        QSVR(**FAST).fit(X, y)


def test_bad_predict_calls(data, fitted):
    X, _ = data
    with pytest.raises(UsageError, match="X has 2 features, the model was fitted with 3"):
        fitted.predict(X[:, :2])
    with pytest.raises(UsageError, match="rule must be one of"):
        fitted.predict(X, rule="median")
    with pytest.raises(ValueError, match="not fitted"):
        QSVR().predict(X)


def test_chunk_weights():
    np.testing.assert_allclose(chunk_weights([0.5, -1.0, 0.5, 0.0]), [0.5, 0, 0.5, 0])
    np.testing.assert_allclose(chunk_weights([-0.5, -1.0, 0.0, np.nan]), 0.25)  # none useful: equal


def test_ensemble(data):
    X, y = data
    model = QSVREnsemble(n_chunks=4, gamma=2.0, seed=2, **FAST)
    model.fit(X[:24], y[:24])
    assert len(model.estimators_) == 4 and [len(c) for c in model.chunks_] == [6] * 4
    assert np.concatenate(model.chunks_).tolist() == list(range(24))  # disjoint, covering
    for rule in RULES:
        w = model.chunk_weights_[rule]
        assert w.sum() == pytest.approx(1.0) and np.all(w >= 0), rule
        pred = model.predict(X[24:], rule=rule)
        expected = sum(wc * m.predict(X[24:], rule=rule) for wc, m in zip(w, model.estimators_))
        np.testing.assert_allclose(pred, expected)
        np.testing.assert_allclose(model.predict_rules(X[24:])[rule], pred)
    assert model.score(X[24:], y[24:]) > 0.0
    again = clone(model).fit(X[:24], y[:24])
    np.testing.assert_array_equal(again.predict(X[24:]), model.predict(X[24:]))
    seeds = {m.seed for m in model.estimators_}
    assert len(seeds) == 4  # each chunk its own derived seed


def test_ensemble_bad_parameters(data):
    X, y = data
    with pytest.raises(UsageError, match="n_chunks must be an integer >= 2"):
        QSVREnsemble(n_chunks=1).fit(X, y)
    with pytest.raises(UsageError, match="n_chunks=4 needs at least 8 training rows"):
        QSVREnsemble(n_chunks=4, **FAST).fit(X[:7], y[:7])
    with pytest.raises(UsageError, match="K must be"):
        QSVREnsemble(n_chunks=2, K=0, **FAST).fit(X[:8], y[:8])
