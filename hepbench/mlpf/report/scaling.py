"""The weak-scaling summary of `hepbench scale` as a text table and a PNG."""
from __future__ import annotations

from pathlib import Path

from hepbench.core.files import atomic_open


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(summary: dict) -> str:
    head = f"{'ranks':>5}  {'train events/s':>14}  {'per rank':>9}  {'min':>9}  {'max':>9}  {'efficiency':>10}  status"
    lines = [head]
    for r in summary["sizes"]:
        eff = "-" if r["efficiency"] is None else f"{r['efficiency']:.1%}"
        status = "ok" if r["status"] == "ok" else f"FAILED: {r['log']}"
        lines.append(f"{r['ranks']:>5}  {_num(r['train'], '14.4g')}  {_num(r['per_rank_mean'], '9.4g')}  "
                     f"{_num(r['per_rank_min'], '9.4g')}  {_num(r['per_rank_max'], '9.4g')}  {eff:>10}  {status}")
    base = summary.get("baseline_ranks")
    if base is not None:
        launcher = "torchrun" if summary["launcher"] == "torchrun" else f"horovodrun --{summary['launcher']}"
        lines.append(f"efficiency = train(N) / (N/{base} x train({base})); launcher: {launcher}")
    return "\n".join(lines) + "\n"


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
