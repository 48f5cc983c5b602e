"""The study's protocol (docs/qubo.md) as a library.

295 curves, 13 features (losses of epochs 0, 2, ..., 24), target loss_98, both scaled with
QuantileTransformer(n_quantiles=50). Each repeat draws a test half (148 curves) and training
curves from the other half, fits a model and scores it on the test half:

  svr            scikit-learn SVR (ε 0.02, γ 0.1, C 67.61), 20 training curves, 1000 repeats
  qsvr           QSVR (simulated annealing by default), 20 curves, 100 repeats; each fit gives the
                 seven combination rules, pooled (700 values) as the poster did
  qsvr_ensemble  QSVREnsemble, 80 curves in 4 chunks of 20, 10 repeats

Two scaling variants are run on the same splits:
  published  scalers fitted on all curves before splitting (the study's leak)
  leak-free  scalers fitted on the training curves of the repeat only (for the ensemble: its 80
             training curves, since the chunk weights and the combined prediction must live on one
             scale); test targets outside the training range are clipped to [0, 1] by the transformer

R² is computed on the scaled target, as the study did, in both argument orders (scoring.py).

Seeds: every random draw comes from SeedSequence(seed, spawn_key=(stream, repeat)), so a repeat
does not depend on how many repeats run before or after it, and SVR repeat i and QSVR repeat i
use the same split (a paired comparison).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TextIO

import numpy as np

from hepbench.core.errors import DataFormatError, UsageError
from hepbench.qsvr.combine import RULES
from hepbench.qsvr.scoring import CONVENTIONS, r2_both

MODELS = ("svr", "qsvr", "qsvr_ensemble")
VARIANTS = ("published", "leak-free")
SVR_SETTINGS = {"epsilon": 0.02, "gamma": 0.1, "C": 67.61}  # the study's SVR and QSVR settings
# Seed streams: one per kind of random draw.
SPLIT, QSVR_SEED, ENSEMBLE_SPLIT, ENSEMBLE_SEED = range(4)


@dataclass(frozen=True)
class Protocol:
    svr_repeats: int = 1000
    qsvr_repeats: int = 100
    ensemble_repeats: int = 10
    seed: int = 0
    r2_convention: str = "correct"  # which order is the headline; both are always recorded
    train_size: int = 20
    ensemble_chunks: int = 4  # ensemble training curves: train_size per chunk
    test_fraction: float = 0.5  # 295 curves: ceil(147.5) = 148 test curves, as the study
    n_quantiles: int = 50
    sampler: str = "simulated"
    qsvr: dict = field(default_factory=dict)  # further QSVR parameters (num_reads, num_sweeps, B, K, ...)

    def __post_init__(self):
        for name in ("svr_repeats", "qsvr_repeats", "ensemble_repeats", "train_size", "n_quantiles"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.ensemble_chunks, int) or self.ensemble_chunks < 2:
            raise UsageError(f"ensemble_chunks must be an integer >= 2, got {self.ensemble_chunks!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.r2_convention not in CONVENTIONS:
            raise UsageError(f"r2_convention must be one of {', '.join(CONVENTIONS)}, got {self.r2_convention!r}")
        if not 0 < self.test_fraction < 1:
            raise UsageError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")

    @property
    def ensemble_size(self) -> int:
        return self.train_size * self.ensemble_chunks

    def repeats(self, model: str) -> int:
        return {"svr": self.svr_repeats, "qsvr": self.qsvr_repeats, "qsvr_ensemble": self.ensemble_repeats}[model]

    def test_size(self, n: int) -> int:
        return math.ceil(n * self.test_fraction)

    def check_data(self, n: int, source: str) -> None:
        """The table must hold a test part and the largest training set drawn from the rest."""
        need = self.ensemble_size
        if n - self.test_size(n) < need:
            raise DataFormatError(
                f"{source}: {n} usable curves (after dropping outliers); the protocol tests on "
                f"{self.test_size(n)} and needs {need} training curves (ensemble: {self.ensemble_chunks} x "
                f"{self.train_size}) from the rest, i.e. at least {math.ceil(need / (1 - self.test_fraction))} curves"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def seed_sequence(seed: int, stream: int, repeat: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(stream, repeat))


def int_seed(seed: int, stream: int, repeat: int) -> int:
    """A 31-bit integer seed (every sampler and scikit-learn accept it)."""
    return int(seed_sequence(seed, stream, repeat).generate_state(1)[0] >> 1)


def split(n: int, protocol: Protocol, stream: int, repeat: int, train_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: a test part, then `train_size` curves drawn from the rest (random order)."""
    rng = np.random.default_rng(seed_sequence(protocol.seed, stream, repeat))
    perm = rng.permutation(n)
    n_test = protocol.test_size(n)
    train = rng.choice(perm[n_test:], size=train_size, replace=False)
    return train, np.sort(perm[:n_test])


def fit_scalers(X: np.ndarray, y: np.ndarray, rows: np.ndarray, n_quantiles: int):
    """QuantileTransformers for X and y fitted on `rows` only (n_quantiles capped at their number)."""
    from sklearn.preprocessing import QuantileTransformer

    # More quantiles than rows is what sklearn would silently cap (with a warning); cap it here.
    q = min(n_quantiles, len(rows))
    qx = QuantileTransformer(n_quantiles=q, random_state=0).fit(X[rows])
    qy = QuantileTransformer(n_quantiles=q, random_state=0).fit(y[rows, None])
    return qx, qy


@dataclass
class Scaled:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    scalers: tuple  # (qx, qy): what the variant fitted, for inspection


def scale(variant: str, X, y, train, test, n_quantiles: int = 50, published_scalers=None) -> Scaled:
    """Scaled training and test data of one repeat; `published` fits on every row, `leak-free` on `train`."""
    if variant == "published":
        qx, qy = published_scalers or fit_scalers(X, y, np.arange(len(y)), n_quantiles)
    elif variant == "leak-free":
        qx, qy = fit_scalers(X, y, np.asarray(train), n_quantiles)
    else:
        raise UsageError(f"scaling variant must be one of {', '.join(VARIANTS)}, got {variant!r}")

    def ty(rows):
        return qy.transform(y[rows, None])[:, 0]

    return Scaled(qx.transform(X[train]), ty(train), qx.transform(X[test]), ty(test), (qx, qy))


def model_label(model: str, sampler: str) -> str:
    if model == "qsvr":
        return "Sim-QSVR (simulated annealing)" if sampler == "simulated" else f"QSVR ({sampler})"
    return {"svr": "SVR", "qsvr_ensemble": "QSVR ensemble"}[model]


def published_key(model: str, sampler: str) -> str:
    if model == "qsvr":
        return "sim_qsvr" if sampler == "simulated" else "qsvr_dwave"
    return model


def make_estimator(model: str, protocol: Protocol, seed: int):
    if model == "svr":
        from sklearn.svm import SVR

        return SVR(kernel="rbf", **SVR_SETTINGS)
    # scikit-learn and the samplers load with the first model made, not with the protocol's definitions.
    from hepbench.qsvr.model import QSVR, QSVREnsemble

    params = {
        "epsilon": SVR_SETTINGS["epsilon"],
        "gamma": SVR_SETTINGS["gamma"],
        **protocol.qsvr,
        "sampler": protocol.sampler,
        "seed": seed,
    }
    if model == "qsvr":
        return QSVR(**params)
    return QSVREnsemble(n_chunks=protocol.ensemble_chunks, **params)


def _scores(model: str, estimator, data: Scaled) -> dict:
    """{'correct': r2} for SVR; {rule: {'correct': r2, 'swapped': r2}} for the QSVR models."""
    if model == "svr":
        return r2_both(data.y_test, estimator.predict(data.X_test))
    if hasattr(estimator, "predict_rules"):
        predictions = estimator.predict_rules(data.X_test)
    else:
        predictions = {r: estimator.predict(data.X_test, rule=r) for r in RULES}
    return {rule: r2_both(data.y_test, predictions[rule]) for rule in RULES}


def _empty(model: str) -> dict:
    if model == "svr":
        return {c: [] for c in CONVENTIONS}
    return {rule: {c: [] for c in CONVENTIONS} for rule in RULES}


def _append(store: dict, scores: dict) -> None:
    for key, value in scores.items():
        if isinstance(value, dict):
            _append(store[key], value)
        else:
            store[key].append(value)


Reporter = Callable[[str, int, int, float], None]


def stderr_reporter(stream: TextIO | None = None, every: int = 10) -> Reporter:
    """Progress lines `qsvr study: svr 100/1000 repeats, 3.2 s` about every tenth of a model."""

    def report(model: str, done: int, total: int, elapsed: float) -> None:
        if done == total or done % max(1, total // every) == 0:
            print(
                f"qsvr study: {model} {done}/{total} repeats ({' + '.join(VARIANTS)} scaling), {elapsed:.1f} s",
                file=stream or sys.stderr,
                flush=True,
            )

    return report


def run_model(
    model: str, X, y, protocol: Protocol, published_scalers=None, report: Reporter | None = None
) -> tuple[dict, float]:
    """R² of every repeat of one model, per variant: ({variant: scores}, seconds)."""
    ensemble = model == "qsvr_ensemble"
    split_stream, seed_stream = (ENSEMBLE_SPLIT, ENSEMBLE_SEED) if ensemble else (SPLIT, QSVR_SEED)
    size = protocol.ensemble_size if ensemble else protocol.train_size
    results = {v: _empty(model) for v in VARIANTS}
    total = protocol.repeats(model)
    start = time.perf_counter()
    for i in range(total):
        train, test = split(len(y), protocol, split_stream, i, size)
        for variant in VARIANTS:
            data = scale(variant, X, y, train, test, protocol.n_quantiles, published_scalers)
            # The same annealer seed in both variants: only the scaling differs between them.
            estimator = make_estimator(model, protocol, int_seed(protocol.seed, seed_stream, i))
            estimator.fit(data.X_train, data.y_train)
            _append(results[variant], _scores(model, estimator, data))
        if report:
            report(model, i + 1, total, time.perf_counter() - start)
    return results, time.perf_counter() - start


def run_study(X, y, protocol: Protocol, source: str = "data", report: Reporter | None = None) -> dict:
    """Every model's R² values: {'r2': {variant: {model: scores}}, 'seconds': {model: s}}."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    protocol.check_data(len(y), source)
    published_scalers = fit_scalers(X, y, np.arange(len(y)), protocol.n_quantiles)  # fitted once: the leak
    r2 = {v: {} for v in VARIANTS}
    seconds = {}
    for model in MODELS:
        per_variant, seconds[model] = run_model(model, X, y, protocol, published_scalers, report)
        for variant in VARIANTS:
            r2[variant][model] = per_variant[variant]
    return {"r2": r2, "seconds": seconds}
