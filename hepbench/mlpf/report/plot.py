"""Per-window training throughput of every copy as a PNG."""

from __future__ import annotations

from pathlib import Path

# A bare Figure renders with Agg when saved to PNG and never touches pyplot, so no display is
# looked for (containers and batch nodes have none), the caller's backend is left as it was,
# and no global figure registry grows when plots are made in a loop.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hepbench.core.files import atomic_open
from hepbench.core.schema import ReportError
from hepbench.mlpf.report.show import cpu_ranges, device_label, get, sig


def _series(copy: dict) -> tuple[list[int], list[float]]:
    points = [(w.get("window"), w.get("events_per_second")) for w in copy.get("windows") or [] if isinstance(w, dict)]
    points = [(x, y) for x, y in points if isinstance(x, int) and isinstance(y, (int, float))]
    return [x for x, _ in points], [y for _, y in points]


def _label(copy: dict) -> str:
    label = f"copy {copy.get('copy', '?')}: {device_label(copy.get('device'))}"
    return label + (f", cpus {cpu_ranges(copy['cpus'])}" if copy.get("cpus") else "")


def _title(report: dict) -> str:
    rep = report.get("report") or {}
    score = get(rep, "wl-scores", "train")
    if rep.get("status") == "ok" and score is not None:
        head = f"train = {sig(score)} events/s"
    else:
        log = str(rep.get("log") or "no log message")
        head = "FAILED: " + (log if len(log) <= 80 else log[:77] + "...")
    host = rep.get("host") or {}
    gpus = sorted({g.get("name", "?") for g in host.get("gpus") or [] if isinstance(g, dict)})
    where = host.get("cpu_model") or "unknown CPU"
    if gpus:
        where += f" + {len(host['gpus'])}x {', '.join(gpus)}"
    return f"mlpf-bmk {get(report, 'app', 'version') or ''}: {head}\n{where}"


def plot_throughput(report: dict, out: str | Path, source: str = "report") -> Path:
    """Write a PNG of events/s per window (one series per copy, dashed line at each copy's overall rate)."""
    out = Path(out)
    copies = [c for c in get(report, "report", "copies") or [] if isinstance(c, dict)]
    series = [(c, *_series(c)) for c in copies]
    if not any(xs for _, xs, _ in series):
        raise ReportError(f"{source} has no timed windows to plot")

    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    levels: list[float] = []  # every plotted y value, to size the axis
    dashed = False
    for i, (copy, xs, ys) in enumerate(series):
        color = f"C{i % 10}"
        if xs:
            ax.plot(xs, ys, marker="o", color=color, label=_label(copy))
            levels += ys
        overall = get(copy, "train", "events_per_second")
        if isinstance(overall, (int, float)):
            ax.axhline(overall, color=color, linestyle="--", linewidth=1, alpha=0.8)
            levels.append(overall)
            dashed = True
    ax.set_xlabel("timed window")
    ax.set_ylabel("training events/s")
    last = max(max(xs) for _, xs, _ in series if xs)
    ax.set_xlim(0.5, last + 0.5)  # a single window still gets a sensible axis
    if last <= 20:
        ax.set_xticks(range(1, last + 1))  # MaxNLocator falls back to fractions for 1 or 2 windows
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0, top=max(levels) * 1.15 or 1.0)  # all-zero rates still get an axis
    ax.grid(True, alpha=0.3)
    ax.legend(
        loc="lower right",
        fontsize="small",
        title_fontsize="small",
        title="dashed: copy's overall events/s" if dashed else None,
    )
    ax.set_title(_title(report), fontsize="medium")
    with atomic_open(out, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    return out
