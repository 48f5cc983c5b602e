"""`hepbench qsvr bench` (alias `qsvr run`): the secondary HEPscore workload qsvr-bmk, writing qsvr_summary.json.

A fixed, short protocol on the learning-curve table: `fits` Sim-QSVR fits (20 training curves
each, leak-free scaling, seeded splits and annealer seeds from the study's streams) after one
untimed warm-up fit, and `svr_fits` scikit-learn SVR fits on the same kind of splits for
reference. Score: `fits_per_second`, QSVR fits divided by the summed wall time of their `fit`
calls (QUBO construction, annealing, combination); `mean_r2`, their mean R² (correct argument
order, the `combine` rule) on the 148 test curves. One process, one thread of annealing.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepbench import __version__
from hepbench.core import envelope
from hepbench.core.envelope import RunInfo, Workload, run_guarded
from hepbench.core.errors import UsageError
from hepbench.core.hostinfo import host_info
from hepbench.core.stats import stats_with_std
from hepbench.core.timestamps import Stopwatch
from hepbench.qsvr.curves import PACKAGED_SHA256, load_curves, study_features
from hepbench.qsvr.model import DEFAULT_RULE
from hepbench.qsvr.samplers import TOKEN_VARIABLE
from hepbench.qsvr.scoring import r2
from hepbench.qsvr.scoring import summary as r2_summary
from hepbench.qsvr.study import QSVR_SEED, SPLIT, Protocol, int_seed, make_estimator, scale, split
from hepbench.qsvr.study_report import software

WORKLOAD = "qsvr-bmk"
SUMMARY_FILE = "qsvr_summary.json"
SCHEMA = "qsvr_summary.schema.json"
DESCRIPTION = (
    f"QSVR (SVR dual as a QUBO, simulated annealing) fits predicting MLPF final losses from "
    f"early learning curves; hepbench {__version__}"
)
DEFINITION = (
    "fits_per_second: QSVR fits (20 training curves, 1000 reads) divided by the summed wall time of "
    "their fit calls, one untimed warm-up fit excluded; mean_r2: mean r2_score(y_true, y_pred) of those "
    "fits on the 148 test curves (leak-free QuantileTransformer scaling, scaled loss_98)"
)
BMK = Workload(
    name=WORKLOAD,
    version=__version__,
    description=DESCRIPTION,
    definition=DEFINITION,
    summary_file=SUMMARY_FILE,
    schema=SCHEMA,
)


@dataclass(frozen=True)
class WorkloadOptions:
    results_dir: Path = Path("results")
    fits: int = 20
    svr_fits: int = 100
    seed: int = 0
    sampler: str = "simulated"
    data: Path | None = None
    extra_arguments: str = ""
    command: tuple[str, ...] = ("hepbench", "qsvr", "bench")

    def __post_init__(self):
        for name in ("fits", "svr_fits"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.sampler not in ("simulated", "dwave"):
            raise UsageError(f"sampler must be simulated or dwave, got {self.sampler!r}")


def _timed_fits(X, y, protocol, fits: int) -> tuple[list[float], list[float]]:
    seconds, scores = [], []
    for i in range(-1, fits):  # -1: the warm-up (imports, first allocation), not counted
        repeat = fits if i < 0 else i  # the warm-up uses a split the timed fits do not
        train, test = split(len(y), protocol, SPLIT, repeat, protocol.train_size)
        data = scale("leak-free", X, y, train, test, protocol.n_quantiles)
        model = make_estimator("qsvr", protocol, int_seed(protocol.seed, QSVR_SEED, repeat))
        start = time.perf_counter()
        model.fit(data.X_train, data.y_train)
        elapsed = time.perf_counter() - start
        if i >= 0:
            seconds.append(elapsed)
            scores.append(r2(data.y_test, model.predict(data.X_test)))
    return seconds, scores


def _svr_scores(X, y, protocol, fits: int) -> list[float]:
    scores = []
    for i in range(fits):
        train, test = split(len(y), protocol, SPLIT, i, protocol.train_size)
        data = scale("leak-free", X, y, train, test, protocol.n_quantiles)
        scores.append(
            r2(data.y_test, make_estimator("svr", protocol, 0).fit(data.X_train, data.y_train).predict(data.X_test))
        )
    return scores


def _data_checksum(path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else PACKAGED_SHA256
    except OSError:
        return None


def _measure(options: WorkloadOptions) -> dict:
    protocol = Protocol(seed=options.seed, sampler=options.sampler)
    curves = load_curves(options.data)
    X, y = study_features(curves)
    protocol.check_data(len(y), curves.source)
    seconds, qsvr_r2 = _timed_fits(X, y, protocol, options.fits)
    svr_r2 = _svr_scores(X, y, protocol, options.svr_fits)
    rates = [1.0 / s for s in seconds]
    return {
        "wl-scores": {"fits_per_second": options.fits / sum(seconds), "mean_r2": float(np.mean(qsvr_r2))},
        "wl-stats": {"fits_per_second": stats_with_std(rates), "mean_r2": stats_with_std(qsvr_r2)},
        "r2": {"qsvr": r2_summary(qsvr_r2), "svr": r2_summary(svr_r2)},
        "fits": [{"fit": i, "seconds": s, "r2": r} for i, (s, r) in enumerate(zip(seconds, qsvr_r2))],
        "protocol": {
            "fits": options.fits,
            "warmup_fits": 1,
            "svr_fits": options.svr_fits,
            "seed": options.seed,
            "sampler": options.sampler,
            "train_size": protocol.train_size,
            "test_size": protocol.test_size(len(y)),
            "scaling": "leak-free",
            "r2_convention": "correct",
            "combine": DEFAULT_RULE,
        },
        "data": {"source": curves.source, "curves": int(len(y)), "features": int(X.shape[1])},
    }


def build_summary(options: WorkloadOptions, measured: dict | None, log: str | None, timing: dict) -> dict:
    """The qsvr-bmk summary: ok with `measured` (from `_measure`), failed with `log` when it is None."""
    ok = measured is not None
    return envelope.build_summary(
        BMK,
        RunInfo(copies=1, threads_per_copy=1, events_per_thread=options.fits, extra_arguments=options.extra_arguments),
        failure=None if ok else log,
        scores=measured["wl-scores"] if ok else None,
        stats=measured["wl-stats"] if ok else None,
        fields={k: measured[k] for k in ("r2", "fits", "protocol", "data")} if ok else {},
        bmkdata_checksum=_data_checksum(options.data),
        software=software(),
        host=host_info([]),
        timing=timing,
        command=options.command,
    )


def write_summary(summary: dict, results_dir: Path) -> Path:
    """Validate, then write inputs.log, version.json (= app) and the summary, each atomically."""
    return envelope.write_summary(summary, results_dir, BMK)


def run_workload(options: WorkloadOptions) -> tuple[dict, int]:
    """Measure and write the summary; on failure a `failed` summary with the reason. (summary, exit code)."""
    watch = Stopwatch()
    measured, log, code = run_guarded(lambda: _measure(options))
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if log and token:  # a client error could echo the D-Wave token: it never reaches a file
        log = log.replace(token, f"<{TOKEN_VARIABLE}>")
    summary = build_summary(options, measured, log, watch.timing())
    write_summary(summary, options.results_dir)
    return summary, code


def score_line(summary: dict) -> str:
    r = summary["report"]
    if r["status"] != "ok":
        return f"{WORKLOAD}: FAILED: {r['log']}"
    s = r["wl-scores"]
    return (
        f"{WORKLOAD} score: {s['fits_per_second']:.4g} QSVR fits/s, mean R² {s['mean_r2']:.3f} "
        f"({summary['run_info']['events_per_thread']} fits, {r['protocol']['sampler']})"
    )
