"""Replay recorded learning curves through the Ray Tune schedulers: a trainable that reads the next
epoch of a curve from the table instead of training, so schedulers are compared in seconds.

Determinism: a scheduler's decisions depend on the order results arrive, so the replay runs one
trial at a time (a Ray instance with 1 CPU; a concurrency limiter would deadlock Hyperband, whose
paused trials stay live) in an order drawn from the seed (a grid search over a seeded permutation
of the curves). BOHB proposes hyperparameters, not curves: a proposal replays the recorded curve
whose hyperparameters are nearest (hepbench.hpo.nearest). Actors are reused (one process for all
trials instead of one per trial: ~0.1 s instead of ~3.6 s a trial on 2 cores).

Ray instance: `ray_session()` starts one with 1 CPU for the duration of a call (or of a whole
comparison) and shuts it down after; an already running 1-CPU instance is used as is, anything
else is refused because it would break the determinism.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from hepbench.core.errors import UsageError
from hepbench.hpo.nearest import NearestCurve
from hepbench.hpo.schedulers import METRIC, MODE, SchedulerSettings, check_scheduler, make_scheduler, make_searcher
from hepbench.hpo.space import load_space

# Tune's automatic CSV/JSON/TensorBoard loggers write every result to disk; the replay collects
# results in the driver instead (ReplayRecorder), so they only cost time. Set for the replay only
# (ray_session): `hpo run` in the same process reads its trials' results through those loggers.
_TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_DEDUP_LOGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
}  # verbose=0 silences the old reporter, not the new one
# With those loggers off, the ResultGrid warns that it cannot read any trial's metrics: expected.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
PAUSING = ("hyperband", "bohb")  # schedulers that pause trials: the trainable must checkpoint


@dataclass
class ReplayRun:
    """One replay: which curves ran how far, and what the search found."""

    scheduler: str
    seed: int
    trials: int
    epochs: int  # epochs consumed: the distinct epochs each trial ran, summed
    best_final: float | None  # best metric at max_t among trials that reached it
    best_curve: int | None  # its row in the table
    rank: int | None  # of best_final among all curves' finals (1 = the best curve of the table)
    completed: int  # trials that reached max_t
    stopped: int  # trials stopped before max_t
    wall_s: float
    restarts: int = 0  # results that went back in time (a resume without checkpoint): 0 when correct
    epochs_per_trial: list[int] = field(default_factory=list)  # in trial start order
    curve_per_trial: list[int] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)  # predictive only: trial (start order), curve, rung, ...

    def summary(self) -> dict:
        """The JSON row (without the per-trial lists and decisions)."""
        keys = (
            "scheduler",
            "seed",
            "trials",
            "epochs",
            "best_final",
            "best_curve",
            "rank",
            "completed",
            "stopped",
            "restarts",
            "wall_s",
        )
        row = {k: getattr(self, k) for k in keys}
        if self.decisions:
            row["predicted_stops"] = sum(d["rule"] == "predicted" and d["action"] == "stop" for d in self.decisions)
            row["asha_stops"] = sum(d["rule"] == "asha" and d["action"] == "stop" for d in self.decisions)
        return row


@contextlib.contextmanager
def _tune_env():
    saved = {k: os.environ.get(k) for k in _TUNE_ENV}
    os.environ.update(_TUNE_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def ray_session():
    """A 1-CPU Ray instance for the block: started and shut down here unless one already runs."""
    with _tune_env():
        with _ray_instance():
            yield


@contextlib.contextmanager
def _ray_instance():
    import ray

    if ray.is_initialized():
        cpus = ray.cluster_resources().get("CPU")
        if cpus != 1:
            raise UsageError(
                f"replay needs a Ray instance with exactly 1 CPU (one trial at a time, so the order "
                f"of results and the decisions are reproducible); the running one has {cpus}"
            )
        yield
        return
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def trial_order(n_curves: int, seed: int, num_samples: int | None = None) -> list[int]:
    """The rows replayed, in trial order: a permutation drawn from the seed (first num_samples)."""
    if num_samples is not None and not 1 <= num_samples:
        raise UsageError(f"num samples must be >= 1, not {num_samples}")
    order = np.random.default_rng(seed).permutation(n_curves)
    return [int(i) for i in order[:num_samples]]


def pause_points(scheduler, max_t: int) -> frozenset[int] | None:
    """The epochs at which Ray's (synchronous) Hyperband can pause a trial, or None: every epoch.

    Checkpointing only there, instead of at every epoch, makes a Hyperband replay about 3x faster
    (each checkpoint is copied to storage). Ray's brackets are private: r0 = bracket's first
    budget, then r·eta capped at max_t, s+1 rounds (ray/tune/schedulers/hyperband.py, Ray 2.60);
    if that ever changes, every epoch is checkpointed again, which is slower but still correct.
    """
    try:
        points = set()
        for s in range(scheduler._s_max_1):
            bracket = scheduler._create_bracket(s)
            r = bracket._r
            for _ in range(s + 1):
                points.add(int(r))
                r = int(min(r * bracket._eta, max_t))
        return frozenset(p for p in points if 0 < p <= max_t)
    except (AttributeError, TypeError):
        return None


def _trainable(config, losses, nearest, max_t, checkpoint_at):
    """Report epoch after epoch of one recorded curve (resuming after a pause from a checkpoint);
    checkpoint_at: the epochs to checkpoint (empty: never, None: every epoch)."""
    from ray import tune

    row = int(config["curve"]) if "curve" in config else nearest(config)
    start = 0
    restored = tune.get_checkpoint()
    if restored:
        with restored.as_directory() as d:
            with open(os.path.join(d, "epoch.json")) as f:
                start = json.load(f)["epoch"]
    for epoch in range(start, max_t):
        metrics = {METRIC: float(losses[row, epoch]), "epoch": epoch + 1, "curve": row}
        if checkpoint_at is None or epoch + 1 in checkpoint_at:
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "epoch.json"), "w") as f:
                    json.dump({"epoch": epoch + 1}, f)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)


def _recorder():
    from ray.tune import Callback

    class ReplayRecorder(Callback):
        """Collects, in the driver, how far each trial got and which curve it replayed."""

        def __init__(self):
            self.epochs: dict[str, int] = {}
            self.curve: dict[str, int] = {}
            self.final: dict[str, float] = {}
            self.started: list[str] = []
            self.restarts = 0  # a trial resumed without its checkpoint (epochs would repeat)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            tid = trial.trial_id
            if tid not in self.epochs:
                self.started.append(tid)
            elif int(result["epoch"]) <= self.epochs[tid]:
                self.restarts += 1
            self.epochs[tid] = max(self.epochs.get(tid, 0), int(result["epoch"]))
            self.curve[tid] = int(result["curve"])
            self.final[tid] = float(result[METRIC])

    return ReplayRecorder()


def replay(
    curves,
    scheduler: str,
    settings: SchedulerSettings | None = None,
    seed: int = 0,
    num_samples: int | None = None,
    space=None,
) -> ReplayRun:
    """Replay `curves` (hepbench.qsvr.curves.Curves) through `scheduler` with the trial order (and
    BOHB's sampling) drawn from `seed`. max_t of `settings` (default: the curves' length) ends a trial."""
    from ray import tune

    check_scheduler(scheduler)
    settings = settings or SchedulerSettings(max_t=curves.epochs, seed=seed)
    if settings.seed != seed:
        settings = _with(settings, seed=seed)
    if settings.max_t > curves.epochs:
        raise UsageError(f"max epochs {settings.max_t} exceeds the {curves.epochs} epochs recorded in {curves.source}")
    order = trial_order(len(curves), seed, num_samples)
    max_t = settings.max_t
    finals = curves.losses[:, max_t - 1]
    sched = make_scheduler(scheduler, settings)
    nearest = None
    if scheduler == "bohb":
        space = space or load_space()
        search_alg, param_space = make_searcher("bohb", settings, space)  # proposals: hyperparameters
        nearest = NearestCurve(space, curves)
    else:
        search_alg, param_space = None, {"curve": tune.grid_search(order)}
    checkpoint_at = pause_points(sched, max_t) if scheduler in PAUSING else frozenset()
    trainable = tune.with_parameters(
        _trainable, losses=curves.losses, nearest=nearest, max_t=max_t, checkpoint_at=checkpoint_at
    )
    recorder = _recorder()
    storage = tempfile.mkdtemp(prefix="hepbench-replay-")
    if scheduler == "bohb":
        # hpbandster draws from numpy's global generator (TuneBOHB's seed reaches only ConfigSpace).
        np.random.seed(seed)
    start = time.perf_counter()
    try:
        with ray_session():
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric=METRIC,
                    mode=MODE,
                    scheduler=sched,
                    search_alg=search_alg,
                    num_samples=len(order) if scheduler == "bohb" else 1,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(storage_path=storage, name="replay", verbose=0, callbacks=[recorder]),
            )
            tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    wall = time.perf_counter() - start
    return _run(scheduler, seed, recorder, finals, max_t, wall, sched)


def _run(scheduler, seed, recorder, finals, max_t, wall, sched) -> ReplayRun:
    ids = recorder.started
    epochs = [recorder.epochs[t] for t in ids]
    reached = [t for t in ids if recorder.epochs[t] >= max_t]
    best_final = best_curve = rank = None
    if reached:
        best = min(reached, key=lambda t: (recorder.final[t], recorder.curve[t]))
        best_curve, best_final = recorder.curve[best], float(recorder.final[best])
        rank = int(np.sum(finals < best_final)) + 1
    # Ray's trial ids carry a random experiment tag: name trials by start order and curve instead,
    # so that runs with the same seed compare equal.
    index = {t: i for i, t in enumerate(ids)}
    decisions = []
    for d in sched.decisions_as_dicts() if hasattr(sched, "decisions_as_dicts") else []:
        tid = d.pop("trial_id")
        decisions.append({"trial": index.get(tid), "curve": recorder.curve.get(tid), **d})
    return ReplayRun(
        scheduler,
        seed,
        len(ids),
        int(sum(epochs)),
        best_final,
        best_curve,
        rank,
        len(reached),
        len(ids) - len(reached),
        round(wall, 3),
        recorder.restarts,
        epochs,
        [recorder.curve[t] for t in ids],
        decisions,
    )


def _with(settings: SchedulerSettings, **changes) -> SchedulerSettings:
    from dataclasses import replace

    return replace(settings, **changes)
