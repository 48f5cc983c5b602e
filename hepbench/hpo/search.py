"""A real Ray Tune search of MLPF hyperparameters (`hepbench hpo run`, `hepbench hpo bench`).

`run_search` starts a local Ray instance (or joins a cluster at `address`), runs the trials of
hepbench.hpo.trainable under the chosen scheduler, and returns one TrialRecord per trial; the
files are written by hepbench.hpo.trials. Ray is imported here only.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hepbench.core.errors import UsageError
from hepbench.hpo.schedulers import METRIC, MODE, SchedulerSettings, check_scheduler, make_scheduler, make_searcher
from hepbench.hpo.space import SearchSpace, default_space
from hepbench.hpo.trainable import TrialSetup, train_mlpf
from hepbench.hpo.trials import REPORTED, TrialRecord, record_from_result
from hepbench.mlpf.config import config_to_dict
from hepbench.mlpf.data.built import require_built
from hepbench.mlpf.engines.backends import BACKEND_ENV, DEFAULT_BACKEND, resolve_backend


@dataclass
class SearchConfig:
    data_dir: Path
    resultsdir: Path
    base: object  # hepbench.mlpf.config.Config: everything the search space does not set
    scheduler: str = "asha"
    num_samples: int = 16
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)
    space: SearchSpace = field(default_factory=default_space)
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    address: str | None = None  # an existing Ray cluster ("auto" or HOST:PORT); None: a local instance
    num_cpus: int | None = None  # local instance only (default: all)
    train_events: int | None = None
    val_events: int | None = None
    graph_optimizer: bool = True  # see hepbench.hpo.trainable.TrialSetup
    quiet: bool = False
    backend: str = DEFAULT_BACKEND  # the engine the trials train on

    def __post_init__(self) -> None:
        check_scheduler(self.scheduler)
        if self.num_samples < 1:
            raise UsageError(f"--num-samples must be at least 1, not {self.num_samples}")
        if not self.cpus_per_trial > 0:
            raise UsageError(f"--cpus-per-trial must be positive, not {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise UsageError(f"--gpus-per-trial must be >= 0, not {self.gpus_per_trial}")
        resolve_backend(self.backend)  # a UsageError naming --backend for an unknown one


@dataclass
class SearchResult:
    trials: list[TrialRecord]
    seconds: float  # wall time of the search (trials, scheduling and Ray's overhead; not Ray's start)
    cluster: dict  # Ray's view: nodes and total resources


def _progress_callback(num_samples: int):
    from ray.tune import Callback

    class Progress(Callback):
        """One line per trial epoch (with events/s) and per finished trial, on stderr.

        Tune pickles its callbacks: the stream is looked up when printing, never stored.
        """

        def __init__(self):
            self.numbers: dict[str, int] = {}

        def _n(self, trial) -> str:
            n = self.numbers.setdefault(trial.trial_id, len(self.numbers) + 1)
            return f"trial {n}/{num_samples} ({trial.trial_id})"

        def on_trial_result(self, iteration, trials, trial, result, **info):
            rate = result.get("events_per_second")
            print(
                f"hpo: {self._n(trial)} epoch {result.get('epoch')}: val_loss {result.get(METRIC):.4g}, "
                f"train_loss {result.get('train_loss'):.4g}" + (f", {rate:.3g} events/s" if rate else ""),
                file=sys.stderr,
                flush=True,
            )

        def on_trial_complete(self, iteration, trials, trial, **info):
            print(f"hpo: {self._n(trial)} ended", file=sys.stderr, flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            print(f"hpo: {self._n(trial)} failed: see its error in hpo_trials.json", file=sys.stderr, flush=True)

    return Progress()


def _recorder():
    """Keeps every result in the driver: the trial records do not depend on Tune's file loggers
    (which TUNE_DISABLE_AUTO_CALLBACK_LOGGERS turns off)."""
    from ray.tune import Callback

    class Recorder(Callback):
        def __init__(self):
            self.rows: dict[str, list[dict]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.rows.setdefault(trial.trial_id, []).append({k: result.get(k) for k in REPORTED})

    return Recorder()


def _start_ray(cfg: SearchConfig) -> bool:
    """Connect to or start Ray; True when this call started it (and should stop it)."""
    import ray

    if ray.is_initialized():
        return False
    # Ray syncs its experiment-state files in the background and may copy a searcher file while the
    # searcher renames it; it logs a traceback and succeeds on the next sync. Our results are read
    # from the trials' own results, not from that state.
    logging.getLogger("ray.tune.execution.experiment_state").setLevel(logging.CRITICAL)
    # Ray's own stderr chatter is not ours to show; trial output stays in the trial logs.
    # The trials' workers pick their Keras backend from the environment before they import Keras.
    kwargs = dict(
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=True,
        logging_level="ERROR",
        runtime_env={"env_vars": {BACKEND_ENV: cfg.backend}},
    )
    if cfg.address:
        try:
            ray.init(address=cfg.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UsageError(f"--address {cfg.address}: cannot connect to a Ray cluster ({e})") from None
    else:
        ray.init(num_cpus=cfg.num_cpus, **kwargs)
    return True


def _check_resources(cfg: SearchConfig, resources: dict) -> None:
    """A trial that needs more than the whole cluster has would wait forever: refuse it up front."""
    for name, per_trial, option in (
        ("CPU", cfg.cpus_per_trial, "--cpus-per-trial"),
        ("GPU", cfg.gpus_per_trial, "--gpus-per-trial"),
    ):
        if per_trial > resources.get(name, 0):
            raise UsageError(
                f"{option} {per_trial:g}: the Ray cluster has {resources.get(name, 0):g} {name}(s), "
                "so no trial could start"
            )


def run_search(cfg: SearchConfig) -> SearchResult:
    require_built(cfg.data_dir)
    import ray
    from ray import tune

    started = _start_ray(cfg)
    try:
        resources = ray.cluster_resources()
        _check_resources(cfg, resources)
        cluster = {
            "nodes": [n["NodeID"] for n in ray.nodes() if n.get("Alive")],
            "resources": {k: resources[k] for k in ("CPU", "GPU") if k in resources},
        }
        setup = TrialSetup(
            data_dir=str(Path(cfg.data_dir).resolve()),
            config=config_to_dict(cfg.base),
            space=cfg.space,
            train_events=cfg.train_events,
            val_events=cfg.val_events,
            threads=max(1, int(cfg.cpus_per_trial)),
            max_epochs=cfg.settings.max_t,
            graph_optimizer=cfg.graph_optimizer,
            backend=cfg.backend,
        )
        trainable = tune.with_resources(
            tune.with_parameters(train_mlpf, setup=setup), {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}
        )
        search_alg, param_space = make_searcher(cfg.scheduler, cfg.settings, cfg.space)
        if cfg.scheduler == "bohb":
            np.random.seed(cfg.settings.seed)  # hpbandster draws from numpy's global generator
        recorder = _recorder()
        callbacks = [recorder] if cfg.quiet else [recorder, _progress_callback(cfg.num_samples)]
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode=MODE,
                scheduler=make_scheduler(cfg.scheduler, cfg.settings),
                search_alg=search_alg,
                num_samples=cfg.num_samples,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=str(Path(cfg.resultsdir).resolve() / "ray"),
                verbose=0,
                callbacks=callbacks,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        start = time.perf_counter()
        grid = tuner.fit()
        seconds = time.perf_counter() - start
        trials = [
            record_from_result(
                r, recorder.rows.get(str((r.metrics or {}).get("trial_id")), []), cfg.space, cfg.settings.max_t
            )
            for r in grid
        ]
    finally:
        if started:
            ray.shutdown()
    return SearchResult(trials, seconds, cluster)
