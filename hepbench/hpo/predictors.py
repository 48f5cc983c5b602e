"""Final-loss predictors for the predictive scheduler: features of a partial learning curve and a
regressor (scikit-learn ε-SVR, or the QSVR of hepbench.qsvr) fitted on curves completed in the run.

Features of a curve observed up to epoch m (after Baker et al. 2017 and the
study; docs/hpo.md): the log-loss at up to N_POINTS epochs spread evenly over 1..m,
the last value, and the mean slope of the last quarter. Logs because MLPF losses span a factor of
two between good and diverging runs while the good ones differ by 0.1 %; a log keeps both visible.
Features and target are standardised on the training rows (the QSVR's fixed γ and ε assume
values of order one).
"""

from __future__ import annotations

import numpy as np

from hepbench.core.errors import UsageError

PREDICTORS = ("svr", "qsvr")
N_POINTS = 6
# ε-SVR on standardised log-losses. C large: the target spread that matters (a fraction of a
# percent among good runs) is small next to the spread of bad runs, and the fit must resolve it.
SVR_PARAMS = {"kernel": "rbf", "C": 30.0, "epsilon": 0.02, "gamma": "scale"}
# QSVR: a QUBO of 2·K·N binaries; the study's N = 20. Larger training sets use the latest 20
# completed curves, and fewer reads than the study's 1000 keep a refit under a second.
QSVR_MAX_TRAIN = 20
QSVR_PARAMS = {"num_reads": 200, "epsilon": 0.02, "gamma": 0.1}


def _log(values) -> np.ndarray:
    """sign·log(1+|v|): a log for losses (>> 1 for MLPF), still defined, monotonic and invertible
    for metrics that reach 0 or below."""
    values = np.asarray(values, dtype=float)
    return np.sign(values) * np.log1p(np.abs(values))


def _unlog(z) -> np.ndarray:
    return np.sign(z) * np.expm1(np.abs(z))


def curve_features(times: np.ndarray, values: np.ndarray, m: int) -> np.ndarray:
    """The feature vector of one curve seen at `times` (increasing) up to time m."""
    keep = times <= m
    t, v = times[keep], _log(values[keep])
    if len(t) == 0:
        raise ValueError(f"no observation at or before time {m}")
    points = np.unique(np.linspace(1, m, min(N_POINTS, m)).round())
    sampled = np.interp(points, t, v)
    tail = t >= t[-1] - max(1, (t[-1] - t[0]) / 4)
    tail_t, tail_v = t[tail], v[tail]
    slope = 0.0 if len(tail_t) < 2 else float(np.polyfit(tail_t, tail_v, 1)[0])
    return np.concatenate([sampled, [v[-1], slope]])


class FinalLossPredictor:
    """Predicts the final loss from curve features; one instance per rung and training set."""

    def __init__(self, kind: str = "svr", seed: int = 0):
        if kind not in PREDICTORS:
            raise UsageError(f"predictor must be one of {', '.join(PREDICTORS)}, not {kind!r}")
        self.kind = kind
        self.seed = seed
        if kind == "qsvr":
            _qsvr_class()  # fail at construction, not at the first rung, when the extra is missing

    def fit(self, X: np.ndarray, finals: np.ndarray) -> FinalLossPredictor:
        X, finals = np.asarray(X, dtype=float), np.asarray(finals, dtype=float)
        if self.kind == "qsvr" and len(X) > QSVR_MAX_TRAIN:
            X, finals = X[-QSVR_MAX_TRAIN:], finals[-QSVR_MAX_TRAIN:]
        y = _log(finals)
        self._x_mean, self._x_std = X.mean(axis=0), _nonzero(X.std(axis=0))
        self._y_mean, self._y_std = y.mean(), float(_nonzero(np.array([y.std()]))[0])
        Xs, ys = (X - self._x_mean) / self._x_std, (y - self._y_mean) / self._y_std
        if self.kind == "svr":
            from sklearn.svm import SVR

            self._model = SVR(**SVR_PARAMS).fit(Xs, ys)
        else:
            self._model = _qsvr_class()(seed=self.seed, **QSVR_PARAMS).fit(Xs, ys)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted final losses, in the metric's units (the inverse of the log used in fit)."""
        Xs = (np.atleast_2d(X) - self._x_mean) / self._x_std
        z = self._model.predict(Xs) * self._y_std + self._y_mean
        return _unlog(z)


def _nonzero(std: np.ndarray) -> np.ndarray:
    return np.where(std > 1e-12, std, 1.0)


def _qsvr_class():
    try:  # the qsvr extra (scikit-learn, dimod) is optional for hpo: loaded only for this predictor
        from hepbench.qsvr.model import QSVR
    except ImportError as e:
        raise UsageError(
            f"predictor 'qsvr' needs the `qsvr` extra ({e.name} is missing): "
            "pip install 'hepbench[qsvr]', or use the predictor 'svr'"
        ) from None
    return QSVR
