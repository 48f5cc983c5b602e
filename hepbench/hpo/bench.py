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
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from hepbench import __version__
from hepbench.core.errors import HepbenchError, UsageError

WORKLOAD = "hpo-bmk"
SUMMARY_FILE = "hpo_summary.json"
SCHEMA = "hpo_summary.schema.json"
SCHEDULER = "asha"
EPOCHS, GRACE_PERIOD, REDUCTION_FACTOR = 4, 1, 2
TRAIN_EVENTS, VAL_EVENTS = 8, 4
DESCRIPTION = f"Ray Tune ASHA search of MLPF hyperparameters (the CoE RAISE search space); hepbench {__version__}"
DEFINITION = (f"trial_epochs_per_hour: epochs run by all trials of a seeded ASHA search (max {EPOCHS} epochs, grace "
              f"{GRACE_PERIOD}, reduction factor {REDUCTION_FACTOR}; an epoch = {TRAIN_EVENTS} training events "
              f"+ validation on {VAL_EVENTS}) divided by the search's wall time in hours; events_per_second: "
              "training events of all trials divided by the same wall time")


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


def search_config(options: BenchOptions):
    from hepbench.mlpf.config import load_config
    from hepbench.hpo.schedulers import SchedulerSettings
    from hepbench.hpo.search import SearchConfig

    settings = SchedulerSettings(max_t=EPOCHS, grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR,
                                 seed=options.seed)
    return SearchConfig(data_dir=options.data_dir, resultsdir=options.results_dir, base=load_config(options.config),
                        scheduler=SCHEDULER, num_samples=options.trials, settings=settings,
                        cpus_per_trial=options.cpus_per_trial, num_cpus=options.num_cpus or _cpus(),
                        train_events=TRAIN_EVENTS, val_events=VAL_EVENTS)


def measure(result) -> dict:
    """Scores and statistics of a finished search (hepbench.hpo.search.SearchResult)."""
    from hepbench.hpo.trials import STATUSES, best_trial
    from hepbench.qsvr.workload import rate_stats as stats  # HEPscore's stats block, as qsvr-bmk's

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
        "wl-stats": {"epoch_events_per_second": stats(rates) if rates else None,
                     "epochs_per_trial": stats([t.epochs for t in trials])},
        "search": {"trials": len(trials), "epochs": epochs, "seconds": result.seconds,
                   "counts": {s: sum(t.status == s for t in trials) for s in STATUSES},
                   "best_val_loss": None if best is None else best.final_loss,
                   "best_config": None if best is None else best.config, "cluster": result.cluster},
    }


def _software() -> dict:
    from hepbench.core.hostinfo import package_versions

    return package_versions(("ray", "tensorflow-cpu", "tensorflow", "keras", "numpy"))

def build_summary(options: BenchOptions, measured: dict | None, log: str | None, timing: dict) -> dict:
    from hepbench.core.hostinfo import bmk_checksum, containment, host_info

    ok = measured is not None
    return {
        "app": {"name": WORKLOAD, "version": __version__, "description": DESCRIPTION, "containment": containment(),
                "bmk_checksum": bmk_checksum(), "bmkdata_checksum": _data_checksum(options.data_dir)},
        # The CPUs the search had: Ray's count once it ran (an existing instance may have fewer).
        "run_info": {"copies": 1, "events_per_thread": options.trials,
                     "threads_per_copy": int(measured["search"]["cluster"]["resources"].get("CPU", 1)) if ok
                     else options.num_cpus or _cpus(),
                     "extra_arguments": options.extra_arguments},
        "report": {
            "wl-scores": measured["wl-scores"] if ok else {},
            "wl-stats": measured["wl-stats"] if ok else {},
            "log": "ok" if ok else log,
            "status": "ok" if ok else "failed",
            "definition": DEFINITION,
            **({"search": measured["search"]} if ok else {}),
            "protocol": {"scheduler": SCHEDULER, "trials": options.trials, "max_epochs": EPOCHS,
                         "grace_period": GRACE_PERIOD, "reduction_factor": REDUCTION_FACTOR,
                         "train_events": TRAIN_EVENTS, "val_events": VAL_EVENTS, "seed": options.seed,
                         "cpus_per_trial": options.cpus_per_trial,
                         "config": str(options.config) if options.config else "packaged defaults"},
            "software": _software(),
            "host": host_info([]),
            "timing": timing,
            "command": list(options.command),
        },
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _data_checksum(data_dir) -> str | None:
    """sha256 of the built data set's description (dataset_info.json), as the MLPF report's."""
    try:
        from hepbench.mlpf.data.built import require_built

        return hashlib.sha256((require_built(data_dir) / "dataset_info.json").read_bytes()).hexdigest()
    except (HepbenchError, OSError):
        return None


def write_summary(summary: dict, results_dir: Path) -> Path:
    """Validate, then write inputs.log, version.json (= app) and the summary, each atomically."""
    from hepbench.core.schema import validate_report
    from hepbench.mlpf.report.summary import write_workload_files

    validate_report(summary, SCHEMA, source="the hpo-bmk summary")
    return write_workload_files(summary, results_dir, SUMMARY_FILE)

def run_bench(options: BenchOptions) -> tuple[dict, int]:
    """Search, measure and write the summary; on failure a `failed` summary with the reason."""
    from hepbench.hpo.search import run_search
    from hepbench.hpo.trials import write_search
    from hepbench.mlpf.run.benchmark import now_iso

    start, t0 = now_iso(), time.perf_counter()
    measured, log, code = None, None, 0
    try:
        cfg = search_config(options)
        result = run_search(cfg)
        measured = measure(result)
    except HepbenchError as e:
        log, code = str(e) or type(e).__name__, e.exit_code
    except Exception as e:  # noqa: BLE001 - any failure must still leave a report for HEPscore
        log, code = f"{type(e).__name__}: {e}", 1
        traceback.print_exc()
    if measured is not None:
        try:  # the trials, their table and curves beside the summary: a plot failure must not fail the score
            write_search(result, cfg, options.results_dir)
        except Exception as e:  # noqa: BLE001
            print(f"hpo bench: warning: the search's own files were not written: {e}", file=sys.stderr)
    timing = {"start": start, "end": now_iso(), "wall_seconds": time.perf_counter() - t0}
    summary = build_summary(options, measured, log, timing)
    write_summary(summary, options.results_dir)
    return summary, code


def score_line(summary: dict) -> str:
    r = summary["report"]
    if r["status"] != "ok":
        return f"{WORKLOAD}: FAILED: {r['log']}"
    s, search = r["wl-scores"], r["search"]
    return (f"{WORKLOAD} score: {s['trial_epochs_per_hour']:.4g} trial-epochs/hour, {s['events_per_second']:.3g} "
            f"events/s ({search['trials']} trials, {search['epochs']} epochs, {search['seconds']:.0f} s)")
