"""What a search leaves behind: one TrialRecord per trial, written as

- hpo_trials.csv: the column layout of the shared learning-curve table (the 7 hyperparameters, then
  loss_0 .. loss_{max_t-1}; a stopped trial's later epochs are empty), so that searches make new
  data sets for the predictors of hepbench.qsvr;
- hpo_trials.json: every trial (configuration, status, curves, rates, where it ran) and the best;
- best_config.json: the best trial's hyperparameters and final validation loss.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hepbench import __version__
from hepbench.core.files import atomic_open, write_json
from hepbench.core.hyperparameters import CSV_COLUMN_ORDER as CSV_HYPERPARAMETERS
from hepbench.core.timestamps import now_iso
from hepbench.hpo.space import CSV_COLUMNS, NAMES

STATUSES = ("completed", "stopped", "error")


@dataclass
class TrialRecord:
    trial_id: str
    config: dict  # study names, the values the trial ran with (quniform rounded, ints as ints)
    status: str  # completed (ran max_t epochs), stopped (by the scheduler), error
    val_loss: list[float] = field(default_factory=list)  # one per epoch
    train_loss: list[float] = field(default_factory=list)
    events_per_second: list[float | None] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    train_events: list[int | None] = field(default_factory=list)  # events each epoch trained on
    node_id: str | None = None
    hostname: str | None = None
    backend: str | None = None  # the engine the trial trained on, as it says (report.backend.name)
    error: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.val_loss)

    @property
    def final_loss(self) -> float | None:
        return self.val_loss[-1] if self.val_loss else None

    def to_dict(self) -> dict:
        return {**asdict(self), "epochs": self.epochs, "final_loss": self.final_loss}


def study_config(space, config: dict) -> dict:
    """The sampled configuration under the study's names, with the types the trial used."""
    hp = space.to_hyperparameters(config)
    return {study: hp[name] for study, (name, _, _) in NAMES.items()}


REPORTED = (
    "val_loss",
    "train_loss",
    "epoch",
    "events_per_second",
    "epoch_seconds",
    "train_events",
    "node_id",
    "hostname",
    "backend",
)  # what the search keeps of each result (hepbench.hpo.trainable reports them)


def _column(rows: list[dict], name: str) -> list:
    values = [row.get(name) for row in rows]
    return [None if isinstance(v, float) and v != v else v for v in values]  # NaN (missing) -> None


def record_from_result(result, rows: list[dict], space, max_t: int) -> TrialRecord:
    """A TrialRecord from one ray.tune.Result and the results its trial reported, in order."""
    metrics = rows[-1] if rows else {}
    val = [float(v) for v in _column(rows, "val_loss") if v is not None]
    error = None if result.error is None else str(result.error).strip().splitlines()[-1][:500]
    epochs = [int(e) for e in _column(rows, "epoch") if e is not None]
    if error is None and epochs != list(range(1, len(epochs) + 1)):
        # A paused trial must resume at the epoch after its checkpoint, never retrain or skip one.
        error = f"epochs reported out of order (a resume from the wrong checkpoint?): {epochs}"
    if error is not None:
        status = "error"
    else:
        status = "completed" if len(val) >= max_t else "stopped"
    return TrialRecord(
        trial_id=str((result.metrics or {}).get("trial_id") or Path(result.path).name),
        config=study_config(space, result.config),
        status=status,
        val_loss=val,
        train_loss=_column(rows, "train_loss"),
        events_per_second=_column(rows, "events_per_second"),
        epoch_seconds=_column(rows, "epoch_seconds"),
        train_events=_column(rows, "train_events"),
        node_id=metrics.get("node_id"),
        hostname=metrics.get("hostname"),
        backend=metrics.get("backend"),
        error=error,
    )


def best_trial(trials: list[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the lowest final loss (None when no trial completed)."""
    completed = [t for t in trials if t.status == "completed" and t.final_loss is not None]
    return min(completed, key=lambda t: t.final_loss) if completed else None


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def trials_csv(trials: list[TrialRecord], max_t: int) -> str:
    by_column = {column: study for study, column in CSV_COLUMNS.items()}
    header = [*CSV_HYPERPARAMETERS, *(f"loss_{i}" for i in range(max_t))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for t in trials:
        losses = (t.val_loss + [None] * max_t)[:max_t]
        writer.writerow([_format(t.config[by_column[c]]) for c in CSV_HYPERPARAMETERS] + [_format(v) for v in losses])
    return out.getvalue()


def write_trials_csv(path: Path, trials: list[TrialRecord], max_t: int) -> None:
    with atomic_open(path, "w") as f:
        f.write(trials_csv(trials, max_t))


def search_document(result, cfg) -> dict:
    """hpo_trials.json: the search's settings, every trial, and the best (result: search.SearchResult)."""
    best = best_trial(result.trials)
    epochs = sum(t.epochs for t in result.trials)
    return {
        "hepbench_version": __version__,
        "created": now_iso(),
        "scheduler": cfg.scheduler,
        "settings": asdict(cfg.settings),
        "num_samples": cfg.num_samples,
        "resources_per_trial": {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial},
        "graph_optimizer": cfg.graph_optimizer,
        "backend": cfg.backend,
        "space": cfg.space.source,
        "data_dir": str(cfg.data_dir),
        "cluster": result.cluster,
        "seconds": result.seconds,
        "epochs": epochs,
        "counts": {s: sum(t.status == s for t in result.trials) for s in STATUSES},
        "best": None if best is None else best.to_dict(),
        "trials": [t.to_dict() for t in result.trials],
    }


def write_search(result, cfg, resultsdir: Path) -> dict:
    """hpo_trials.json, hpo_trials.csv, best_config.json and hpo_curves.png in `resultsdir`."""
    from hepbench.hpo.plot import plot_curves  # matplotlib: kept out of `hepbench --help`, which imports this module

    resultsdir = Path(resultsdir)
    doc = search_document(result, cfg)
    write_trials_csv(resultsdir / "hpo_trials.csv", result.trials, cfg.settings.max_t)
    best = best_trial(result.trials)
    write_json(
        resultsdir / "best_config.json",
        {
            "scheduler": cfg.scheduler,
            "best": None
            if best is None
            else {
                "trial_id": best.trial_id,
                "config": best.config,
                "final_loss": best.final_loss,
                "epochs": best.epochs,
            },
            "reason": None if best is not None else "no trial ran all max_t epochs",
        },
    )
    plot_curves(
        result.trials,
        resultsdir / "hpo_curves.png",
        f"{cfg.scheduler}: {len(result.trials)} trials, {doc['epochs']} epochs",
        best,
    )
    write_json(resultsdir / "hpo_trials.json", doc)
    return doc
