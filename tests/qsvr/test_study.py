"""The study protocol as a library: R² conventions, what each scaling variant is fitted on, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.preprocessing import QuantileTransformer
from sklearn.svm import SVR

from hepbench.core.errors import DataFormatError, UsageError
from hepbench.qsvr import study
from hepbench.qsvr.curves import load_curves, study_features
from hepbench.qsvr.scoring import r2, summary
from hepbench.qsvr.study import ENSEMBLE_SPLIT, SPLIT, Protocol, run_model, scale, split

CHEAP = {"num_reads": 40, "num_sweeps": 10}


@pytest.fixture(scope="module")
def Xy():
    return study_features(load_curves())


def test_the_swapped_convention_is_r2_score_of_prediction_against_truth():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=50)
    pred = 0.5 * truth + rng.normal(scale=0.3, size=50)
    assert r2(truth, pred, "correct") == r2_score(truth, pred)
    assert r2(truth, pred, "swapped") == r2_score(pred, truth)
    assert abs(r2(truth, pred, "correct") - r2(truth, pred, "swapped")) > 0.05
    with pytest.raises(ValueError, match="correct, swapped"):
        r2(truth, pred, "sideways")


def test_summary_uses_the_population_std():
    s = summary([0.5, 0.7, 0.9])
    assert s["std"] == pytest.approx(np.std([0.5, 0.7, 0.9], ddof=0)) and s["count"] == 3
    assert (s["best"], s["worst"], s["mean"]) == (0.9, 0.5, pytest.approx(0.7))


def test_svr_repeats_are_the_study_recipe_and_record_both_conventions(Xy):
    X, y = Xy
    protocol = Protocol(svr_repeats=3, seed=5)
    results, _ = run_model("svr", X, y, protocol)
    # Repeat 1 by hand: the published variant scales with transformers fitted on all 295 curves.
    train, test = split(len(y), protocol, SPLIT, 1, 20)
    qx = QuantileTransformer(n_quantiles=50).fit(X)
    qy = QuantileTransformer(n_quantiles=50).fit(y[:, None])
    pred = (
        SVR(epsilon=0.02, gamma=0.1, C=67.61)
        .fit(qx.transform(X[train]), qy.transform(y[train, None])[:, 0])
        .predict(qx.transform(X[test]))
    )
    truth = qy.transform(y[test, None])[:, 0]
    got = results["published"]
    assert got["correct"][1] == pytest.approx(r2_score(truth, pred))
    assert got["swapped"][1] == pytest.approx(r2_score(pred, truth))
    assert got["correct"] != got["swapped"]
    assert results["leak-free"]["correct"] != got["correct"]


def test_splits_test_on_half_and_train_on_the_other_half(Xy):
    _, y = Xy
    protocol = Protocol(seed=1)
    train, test = split(len(y), protocol, SPLIT, 0, 20)
    assert len(test) == 148 and len(train) == 20 == len(set(train))
    assert not set(train) & set(test)
    big, big_test = split(len(y), protocol, ENSEMBLE_SPLIT, 0, 80)
    assert len(big) == 80 and not set(big) & set(big_test)
    # Seeded per (stream, repeat): reproducible, independent of the repeat count, different per seed.
    again, _ = split(len(y), Protocol(seed=1, svr_repeats=7), SPLIT, 0, 20)
    other, _ = split(len(y), Protocol(seed=2), SPLIT, 0, 20)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_the_leak_free_scalers_are_fitted_on_the_training_rows_only(Xy):
    X, y = Xy
    train, test = split(len(y), Protocol(), SPLIT, 0, 20)
    leak_free = scale("leak-free", X, y, train, test)
    qx, qy = leak_free.scalers
    expected = QuantileTransformer(n_quantiles=20).fit(X[train])
    assert np.allclose(qx.quantiles_, expected.quantiles_)
    assert np.allclose(qy.quantiles_[:, 0], np.sort(y[train]))  # 20 quantiles of 20 values: the values
    # Changing the test curves changes nothing the leak-free model sees; it changes the published scalers.
    X2, y2 = X.copy(), y.copy()
    X2[test] *= 1.5
    y2[test] += 100.0
    moved = scale("leak-free", X2, y2, train, test)
    assert np.array_equal(moved.X_train, leak_free.X_train) and np.array_equal(moved.y_train, leak_free.y_train)
    published, published_moved = scale("published", X, y, train, test), scale("published", X2, y2, train, test)
    assert not np.allclose(published.X_train, published_moved.X_train)
    assert np.allclose(published.scalers[0].quantiles_, QuantileTransformer(n_quantiles=50).fit(X).quantiles_)
    # Test targets beyond the training range are clipped by the transformer, not extrapolated.
    assert leak_free.y_test.min() >= 0.0 and leak_free.y_test.max() <= 1.0


def test_the_ensemble_scalers_are_fitted_on_its_80_training_curves(Xy, monkeypatch):
    X, y = Xy
    fitted = []
    original = study.fit_scalers

    def recording(X_, y_, rows, n_quantiles):
        fitted.append(np.array(rows))
        return original(X_, y_, rows, n_quantiles)

    monkeypatch.setattr(study, "fit_scalers", recording)
    protocol = Protocol(ensemble_repeats=1, seed=2, qsvr=CHEAP)
    results, _ = run_model("qsvr_ensemble", X, y, protocol, published_scalers=original(X, y, np.arange(len(y)), 50))
    train, test = split(len(y), protocol, ENSEMBLE_SPLIT, 0, 80)
    assert len(fitted) == 1 and np.array_equal(fitted[0], train) and not set(fitted[0]) & set(test)
    assert set(results["leak-free"]) == set(results["published"]) and len(results["leak-free"]) == 7  # rules


def test_qsvr_repeats_record_every_rule_in_both_conventions_reproducibly(Xy):
    X, y = Xy
    protocol = Protocol(qsvr_repeats=2, seed=4, qsvr=CHEAP)
    first, _ = run_model("qsvr", X, y, protocol)
    second, _ = run_model("qsvr", X, y, protocol)
    assert first == second
    for per in first["published"].values():
        assert len(per["correct"]) == len(per["swapped"]) == 2 and per["correct"] != per["swapped"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"svr_repeats": 0}, "svr_repeats must be a positive integer"),
        ({"qsvr_repeats": -1}, "qsvr_repeats must be a positive integer"),
        ({"ensemble_chunks": 1}, "ensemble_chunks must be an integer >= 2"),
        ({"r2_convention": "both"}, "r2_convention must be one of correct, swapped"),
        ({"seed": -3}, "seed must be an integer >= 0"),
    ],
)
def test_bad_protocols_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Protocol(**kwargs)


def test_a_table_too_small_for_the_protocol_is_named():
    with pytest.raises(DataFormatError, match=r"t\.csv: 100 usable curves .* needs 80 training curves .* at least 160"):
        Protocol().check_data(100, "t.csv")
