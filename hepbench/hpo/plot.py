"""Learning curves of a search as a PNG: every trial's validation loss per epoch, stopped trials
ending in a cross, failed ones in a circle, the best trial drawn thick."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hepbench.core.files import atomic_open

STYLE = {"completed": ("C0", None), "stopped": ("C1", "x"), "error": ("C3", "o")}


def plot_curves(trials, out: str | Path, title: str, best=None) -> Path:
    """`trials`: TrialRecords (hepbench.hpo.trials); `best`: the one to highlight."""
    out = Path(out)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    counts = {status: 0 for status in STYLE}
    for t in trials:
        if not t.val_loss:
            continue
        counts[t.status] += 1
        colour, marker = STYLE[t.status]
        epochs = range(1, len(t.val_loss) + 1)
        ax.plot(epochs, t.val_loss, color=colour, alpha=0.6, linewidth=1)
        if marker:
            ax.plot([len(t.val_loss)], [t.val_loss[-1]], marker=marker, color=colour, linestyle="none")
    for status, (colour, marker) in STYLE.items():
        if counts[status]:
            ax.plot([], [], color=colour, marker=marker, label=f"{status} ({counts[status]})")
    if best is not None:
        ax.plot(
            range(1, len(best.val_loss) + 1),
            best.val_loss,
            color="black",
            linewidth=2.5,
            label=f"best: {best.final_loss:.4g} ({best.trial_id})",
        )
    positive = [v for t in trials for v in t.val_loss if v is not None]
    if positive and min(positive) > 0 and max(positive) / min(positive) > 20:
        ax.set_yscale("log")  # diverging trials would squash the others
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # no trial reported an epoch: nothing to label
        ax.legend(loc="upper right", fontsize="small")
    with atomic_open(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    return out
