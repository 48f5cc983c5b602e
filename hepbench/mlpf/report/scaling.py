"""The weak-scaling summary of `hepbench scale` as a text table and a PNG."""

from __future__ import annotations

from pathlib import Path

from hepbench.core.files import atomic_open
from hepbench.core.terminal import Document, Table, plain_text

HEADERS = ("ranks", "train events/s", "per rank", "min", "max", "efficiency", "status")


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_document(summary: dict) -> Document:
    """The sizes as a table (ranks, throughput, per-rank spread, efficiency, status) and how efficiency is defined."""
    rows = []
    for r in summary["sizes"]:
        eff = "-" if r["efficiency"] is None else f"{r['efficiency']:.1%}"
        status = "ok" if r["status"] == "ok" else f"FAILED: {r['log']}"
        rows.append(
            [
                str(r["ranks"]),
                _num(r["train"], ".4g"),
                _num(r["per_rank_mean"], ".4g"),
                _num(r["per_rank_min"], ".4g"),
                _num(r["per_rank_max"], ".4g"),
                eff,
                status,
            ]
        )
    doc: list = [Table(HEADERS, rows, justify=("right",) * 6 + ("left",))]
    base = summary.get("baseline_ranks")
    if base is not None:
        launcher = "torchrun" if summary["launcher"] == "torchrun" else f"horovodrun --{summary['launcher']}"
        doc.append(f"efficiency = train(N) / (N/{base} x train({base})); launcher: {launcher}")
    return doc


def table(summary: dict) -> str:
    """The table as plain text (the file `hepbench scale` writes, and its output in logs)."""
    return plain_text(table_document(summary)) + "\n"


def write_plot(summary: dict, path: Path) -> Path:
    """Throughput against ranks (with the ideal line from the baseline) and efficiency, side by side."""
    # Here, not at the top: `hepbench --help` (which loads the table) needs no matplotlib.
    from matplotlib.figure import Figure  # a bare Figure: Agg, no display, no pyplot state (see plot.py)
    from matplotlib.ticker import MaxNLocator

    ok = [r for r in summary["sizes"] if r["status"] == "ok"]
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    if ok:
        ranks = [r["ranks"] for r in ok]
        base = ok[0]
        left.plot(ranks, [r["train"] for r in ok], "o-", label="measured")
        left.plot(ranks, [n / base["ranks"] * base["train"] for n in ranks], "--", color="grey", label="ideal")
        right.plot(ranks, [100 * r["efficiency"] for r in ok], "o-")
    failed = [r["ranks"] for r in summary["sizes"] if r["status"] != "ok"]
    for ax in (left, right):
        for n in failed:
            ax.axvline(n, color="red", alpha=0.3)
        ax.set_xlabel("Horovod ranks")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    left.set_ylabel("train throughput (events/s)")
    left.set_ylim(bottom=0)
    if ok:
        left.legend()
    right.set_ylabel("scaling efficiency (%)")
    right.set_ylim(bottom=0, top=max([110] + [100 * r["efficiency"] + 5 for r in ok]))
    fig.suptitle("mlpf-bmk weak scaling" + (f" (failed sizes in red: {failed})" if failed else ""))
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return path
