"""`hepbench hpo bench`: the secondary HEPscore workload hpo-bmk, writing hpo_summary.json.

A short, fixed ASHA search of MLPF on the built data set (the image's embedded subset by default):
`trials` trials from the study's search space (seeded), at most EPOCHS epochs each, ASHA with a
grace period of 1 and reduction factor 2, one CPU per trial on a local Ray instance, an epoch
being the first TRAIN_EVENTS training events and a validation on VAL_EVENTS test events.
Score: `trial_epochs_per_hour`, the epochs all trials ran divided by the wall time of the search
(Ray's scheduling, trial start-up, training and validation: what a site's HPO throughput is).
ASHA decides asynchronously, so how many epochs run can vary between runs; the score is a rate.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from hepbench import __version__
from hepbench.core import envelope
from hepbench.core.envelope import RunInfo, Workload, run_guarded
from hepbench.core.errors import HepbenchError, UsageError
from hepbench.core.hostinfo import host_info, package_versions, usable_cpus
from hepbench.core.stats import stats_with_std
from hepbench.core.timestamps import Stopwatch
from hepbench.hpo.schedulers import SchedulerSettings
from hepbench.hpo.search import SearchConfig, run_search
from hepbench.hpo.trials import STATUSES, best_trial, write_search
from hepbench.mlpf.config import load_config
from hepbench.mlpf.data.built import require_built

WORKLOAD = "hpo-bmk"
SUMMARY_FILE = "hpo_summary.json"
SCHEMA = "hpo_summary.schema.json"
SCHEDULER = "asha"
EPOCHS, GRACE_PERIOD, REDUCTION_FACTOR = 4, 1, 2
TRAIN_EVENTS, VAL_EVENTS = 8, 4
DESCRIPTION = f"Ray Tune ASHA search of MLPF hyperparameters (the CoE RAISE search space); hepbench {__version__}"
DEFINITION = (
    f"trial_epochs_per_hour: epochs run by all trials of a seeded ASHA search (max {EPOCHS} epochs, grace "
    f"{GRACE_PERIOD}, reduction factor {REDUCTION_FACTOR}; an epoch = {TRAIN_EVENTS} training events "
    f"+ validation on {VAL_EVENTS}) divided by the search's wall time in hours; events_per_second: "
    "training events of all trials divided by the same wall time"
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
class BenchOptions:
    data_dir: Path
    results_dir: Path = Path("results")
    trials: int = 8
    cpus_per_trial: float = 1
    num_cpus: int | None = None  # the local Ray instance (default: all)
    seed: int = 42
    config: Path | None = None  # a YAML over hepbench's defaults (recorded; the default model otherwise)
    extra_arguments: str = ""
    command: tuple[str, ...] = ("hepbench", "hpo", "bench")

    def __post_init__(self):
        if not isinstance(self.trials, int) or self.trials < 1:
            raise UsageError(f"trials must be a positive integer, got {self.trials!r}")


def search_config(options: BenchOptions) -> SearchConfig:
    settings = SchedulerSettings(
        max_t=EPOCHS, grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR, seed=options.seed
    )
    return SearchConfig(
        data_dir=options.data_dir,
        resultsdir=options.results_dir,
        base=load_config(options.config),
        scheduler=SCHEDULER,
        num_samples=options.trials,
        settings=settings,
        cpus_per_trial=options.cpus_per_trial,
        num_cpus=options.num_cpus or _cpus(),
        train_events=TRAIN_EVENTS,
        val_events=VAL_EVENTS,
    )


def measure(result) -> dict:
    """Scores and statistics of a finished search (hepbench.hpo.search.SearchResult)."""
    trials = result.trials
    epochs = sum(t.epochs for t in trials)
    if epochs == 0:
        errors = sorted({t.error for t in trials if t.error})
        raise HepbenchError(f"no trial finished an epoch: {'; '.join(errors) or 'no trial ran'}")
    hours = result.seconds / 3600
    events = sum(n for t in trials for n in t.train_events if n)
    rates = [r for t in trials for r in t.events_per_second if r]
    best = best_trial(trials)
    return {
        "wl-scores": {"trial_epochs_per_hour": epochs / hours, "events_per_second": events / result.seconds},
        "wl-stats": {
            "epoch_events_per_second": stats_with_std(rates) if rates else None,
            "epochs_per_trial": stats_with_std([t.epochs for t in trials]),
        },
        "search": {
            "trials": len(trials),
            "epochs": epochs,
            "seconds": result.seconds,
            "counts": {s: sum(t.status == s for t in trials) for s in STATUSES},
            "best_val_loss": None if best is None else best.final_loss,
            "best_config": None if best is None else best.config,
            "cluster": result.cluster,
        },
    }


def _software() -> dict:
    return package_versions(__version__, ("ray", "tensorflow-cpu", "tensorflow", "keras", "numpy"))


def build_summary(options: BenchOptions, measured: dict | None, log: str | None, timing: dict) -> dict:
    """The hpo-bmk summary: ok with `measured` (from `measure`), failed with `log` when it is None."""
    ok = measured is not None
    # The CPUs the search had: Ray's count once it ran (an existing instance may have fewer).
    threads = int(measured["search"]["cluster"]["resources"].get("CPU", 1)) if ok else options.num_cpus or _cpus()
    protocol = {
        "scheduler": SCHEDULER,
        "trials": options.trials,
        "max_epochs": EPOCHS,
        "grace_period": GRACE_PERIOD,
        "reduction_factor": REDUCTION_FACTOR,
        "train_events": TRAIN_EVENTS,
        "val_events": VAL_EVENTS,
        "seed": options.seed,
        "cpus_per_trial": options.cpus_per_trial,
        "config": str(options.config) if options.config else "packaged defaults",
    }
    return envelope.build_summary(
        BMK,
        RunInfo(
            copies=1,
            threads_per_copy=threads,
            events_per_thread=options.trials,
            extra_arguments=options.extra_arguments,
        ),
        failure=None if ok else log,
        scores=measured["wl-scores"] if ok else None,
        stats=measured["wl-stats"] if ok else None,
        fields={**({"search": measured["search"]} if ok else {}), "protocol": protocol},
        bmkdata_checksum=_data_checksum(options.data_dir),
        software=_software(),
        host=host_info([]),
        timing=timing,
        command=options.command,
    )


def _cpus() -> int:
    return len(usable_cpus())


def _data_checksum(data_dir) -> str | None:
    """sha256 of the built data set's description (dataset_info.json); the MLPF report's is instead
    the verified digest of all its files (hepbench.mlpf.data.integrity)."""
    try:
        return hashlib.sha256((require_built(data_dir) / "dataset_info.json").read_bytes()).hexdigest()
    except (HepbenchError, OSError):
        return None


def write_summary(summary: dict, results_dir: Path) -> Path:
    """Validate, then write inputs.log, version.json (= app) and the summary, each atomically."""
    return envelope.write_summary(summary, results_dir, BMK)


def run_bench(options: BenchOptions) -> tuple[dict, int]:
    """Search, measure and write the summary; on failure a `failed` summary with the reason."""
    watch = Stopwatch()

    def search():
        cfg = search_config(options)
        result = run_search(cfg)
        return cfg, result, measure(result)

    done, log, code = run_guarded(search)
    measured = None
    if done is not None:
        cfg, result, measured = done
        try:  # the trials, their table and curves beside the summary: a plot failure must not fail the score
            write_search(result, cfg, options.results_dir)
        except Exception as e:  # noqa: BLE001
            print(f"hpo bench: warning: the search's own files were not written: {e}", file=sys.stderr)
    summary = build_summary(options, measured, log, watch.timing())
    write_summary(summary, options.results_dir)
    return summary, code


def score_line(summary: dict) -> str:
    r = summary["report"]
    if r["status"] != "ok":
        return f"{WORKLOAD}: FAILED: {r['log']}"
    s, search = r["wl-scores"], r["search"]
    return (
        f"{WORKLOAD} score: {s['trial_epochs_per_hour']:.4g} trial-epochs/hour, {s['events_per_second']:.3g} "
        f"events/s ({search['trials']} trials, {search['epochs']} epochs, {search['seconds']:.0f} s)"
    )
