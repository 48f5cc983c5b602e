"""The scores of `hepbench report compare` with their intervals, as a PNG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # a bare Figure: Agg, no display, no pyplot state (see plot.py)

from hepbench.core.files import atomic_open
from hepbench.mlpf.report.compare import Entry
from hepbench.mlpf.report.show import sig


def plot_scores(entries: list[Entry], out: str | Path, problems: list[str]) -> Path:
    """One row per report, first on top: its score, its interval as an error bar, its ratio to the first.
    A report without a score is marked as such; reasons the comparison is not like for like go in red."""
    out = Path(out)
    first = entries[0]
    fig = Figure(figsize=(8, 1.6 + 0.55 * len(entries) + 0.25 * len(problems)), layout="constrained")
    ax = fig.add_subplot()
    top = max([e.interval["high"] if e.interval else e.score for e in entries if e.ok] or [1.0])
    for y, e in enumerate(entries):
        if not e.ok:
            ax.text(0.01 * top, y, f"no score ({e.report['report'].get('status', '?')})", va="center", color="C3")
            continue
        ci = e.interval
        # Clamped: an edited report may hold a score outside its interval; matplotlib refuses negative bars.
        xerr = [[max(e.score - ci["low"], 0.0)], [max(ci["high"] - e.score, 0.0)]] if ci else None
        ax.errorbar([e.score], [y], xerr=xerr, fmt="o", color=f"C{y % 10}", capsize=4)
        ratio = f", \u00d7{e.score / first.score:.3f}" if first.ok and first.score else ""
        ax.annotate(
            f"{sig(e.score)}{ratio}",
            (e.score, y),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize="small",
        )
    ax.set_yticks(range(len(entries)), [e.label for e in entries])
    ax.set_ylim(len(entries) - 0.4, -0.6)  # the first report on top, room for the labels above the points
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel(f"{first.score_key} ({first.unit})" if first.unit else first.score_key)
    ax.grid(True, axis="x", alpha=0.3)
    bars = "95 % intervals" if any(e.interval for e in entries) else "no intervals in these reports"
    title = f"{', '.join(sorted({e.workload for e in entries}))}: scores ({bars}), ratio to {first.label}"
    ax.set_title(title, fontsize="medium")
    if problems:
        fig.suptitle("not like for like: " + "; ".join(problems), color="C3", fontsize="small", wrap=True)
    with atomic_open(out, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    return out
