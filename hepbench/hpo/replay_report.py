"""Compare schedulers by replay over several seeds: the JSON report, its table and its plot."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hepbench.core.errors import UsageError
from hepbench.core.files import atomic_open, write_json
from hepbench.core.schema import validate_report
from hepbench.hpo.replay import ray_session, replay
from hepbench.hpo.schedulers import SchedulerSettings, check_scheduler

REPORT_NAME = "hpo_replay"
SCHEMA = "hpo_replay.schema.json"


def compare(
    curves, schedulers, settings: SchedulerSettings, seeds, num_samples: int | None = None, progress=sys.stderr
) -> dict:
    """Replay `curves` through each scheduler for each seed (one Ray instance for all runs)."""
    schedulers = [check_scheduler(s) for s in schedulers]
    seeds = [int(s) for s in seeds]
    if not schedulers or not seeds:
        raise UsageError("compare needs at least one scheduler and one seed")
    runs = []
    with ray_session():
        for scheduler in schedulers:
            for seed in seeds:
                run = replay(curves, scheduler, settings, seed=seed, num_samples=num_samples)
                runs.append(run.summary())
                if progress is not None:
                    best = (
                        "none reached max_t"
                        if run.best_final is None
                        else f"best {run.best_final:.2f} (rank {run.rank})"
                    )
                    print(
                        f"replay {scheduler} seed {seed}: {run.trials} trials, {run.epochs} epochs, {best}, "
                        f"{run.wall_s:.1f} s",
                        file=progress,
                        flush=True,
                    )
    finals = curves.losses[:, settings.max_t - 1]
    return {
        "data": {
            "source": curves.source,
            "curves": len(curves),
            "epochs": curves.epochs,
            "best_final": float(finals.min()),
        },
        # settings.seed is replaced by each run's seed: not reported
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "seed"},
            "seeds": seeds,
            "num_samples": num_samples,
        },
        "schedulers": {s: aggregate([r for r in runs if r["scheduler"] == s]) for s in schedulers},
        "runs": runs,
    }


def aggregate(rows: list[dict]) -> dict:
    """Mean/std of epochs, mean/worst best final loss, mean rank, total wall time."""
    epochs = np.array([r["epochs"] for r in rows], dtype=float)
    bests = np.array([r["best_final"] for r in rows if r["best_final"] is not None], dtype=float)
    ranks = np.array([r["rank"] for r in rows if r["rank"] is not None], dtype=float)
    return {
        "runs": len(rows),
        "epochs_mean": float(epochs.mean()),
        "epochs_std": float(epochs.std()),
        "best_final_mean": float(bests.mean()) if len(bests) else None,
        "best_final_worst": float(bests.max()) if len(bests) else None,
        "rank_mean": float(ranks.mean()) if len(ranks) else None,
        "runs_without_result": len(rows) - len(bests),
        "wall_s": float(sum(r["wall_s"] for r in rows)),
    }


def _fmt(value, digits=2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def table(report: dict) -> str:
    """The comparison as a markdown table (one row per scheduler)."""
    lines = [
        "| scheduler | runs | epochs (mean ± std) | best final loss (mean) | worst | mean rank | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, a in report["schedulers"].items():
        lines.append(
            f"| {name} | {a['runs']} | {a['epochs_mean']:.0f} ± {a['epochs_std']:.0f} | "
            f"{_fmt(a['best_final_mean'])} | {_fmt(a['best_final_worst'])} | {_fmt(a['rank_mean'], 1)} | "
            f"{a['wall_s']:.0f} |"
        )
    d = report["data"]
    lines.append("")
    lines.append(
        f"{d['curves']} curves of {d['source']}; best final loss in the table {d['best_final']:.2f}; "
        f"seeds {report['settings']['seeds'][0]}..{report['settings']['seeds'][-1]}; "
        f"max_t {report['settings']['max_t']}, rf {report['settings']['reduction_factor']}, "
        f"grace {report['settings']['grace_period']}"
    )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> Path:
    """Epochs consumed against best final loss, one point per seed, one colour per scheduler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in report["schedulers"]:
        rows = [r for r in report["runs"] if r["scheduler"] == name and r["best_final"] is not None]
        ax.scatter([r["epochs"] for r in rows], [r["best_final"] for r in rows], label=name, alpha=0.7, s=22)
    ax.axhline(report["data"]["best_final"], color="grey", lw=0.8, ls="--", label="best in table")
    ax.set_xlabel("epochs consumed")
    ax.set_ylabel("best final loss found")
    ax.set_title("Scheduler replay on recorded learning curves")
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def write(report: dict, results_dir: Path) -> dict[str, Path]:
    """Validate, then write hpo_replay.md, .png and .json in results_dir, each atomically (the JSON
    last: its presence means the others are complete)."""
    validate_report(report, SCHEMA, source="the replay report")
    results_dir = Path(results_dir)
    paths = {
        "md": results_dir / f"{REPORT_NAME}.md",
        "png": results_dir / f"{REPORT_NAME}.png",
        "json": results_dir / f"{REPORT_NAME}.json",
    }
    with atomic_open(paths["md"], "w") as f:
        f.write(table(report) + "\n")
    plot(report, paths["png"])
    write_json(paths["json"], report)
    return paths
