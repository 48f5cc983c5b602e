"""`hepbench scale`: weak scaling with Horovod. The same per-rank workload (`hepbench run
--strategy horovod`) at each job size, one launcher call per size; the results are a table, a
JSON summary (results_schema/scaling.schema.json) and a PNG beside the per-size reports:

    RESULTS/ranks-N/mlpf_summary.json   the full report of the N-rank run (and launcher.log)
    RESULTS/scaling.json, scaling.txt, scaling.png

Scaling efficiency at N ranks is train(N) / ((N / N0) * train(N0)), N0 the smallest size run
(normally 1, which gives the usual train(N) / (N * train(1))).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hepbench.core.errors import UsageError
from hepbench.core.files import atomic_open, check_writable_dir, write_json
from hepbench.core.schema import validate_report
from hepbench.core.timestamps import now_iso
from hepbench.mlpf.report.scaling import table, write_plot
from hepbench.mlpf.run.cli import run_parser

LAUNCHERS = ("gloo", "mpi")  # horovodrun --gloo, horovodrun --mpi (mpirun underneath)
SCHEMA = "scaling.schema.json"
# Options `scale` sets itself for every size; passing them through would break the comparison.
_OWN_OPTIONS = ("-w", "--resultsdir", "--strategy", "-c", "--copies", "--replicas")


@dataclass(frozen=True)
class ScaleOptions:
    ranks: tuple[int, ...]
    results_dir: Path
    run_args: tuple[str, ...] = ()  # passed on to every `hepbench run`
    launcher: str = "gloo"
    hosts: str | None = None  # horovodrun -H (default localhost:N)
    timeout: float | None = None  # seconds per size
    quiet: bool = False
    env: dict = field(default_factory=dict)  # extra environment for the launcher


def parse_ranks(text: str) -> tuple[int, ...]:
    try:
        ranks = tuple(int(r) for r in text.split(","))
    except ValueError:
        raise UsageError(f"--ranks must be a comma-separated list of positive integers, not {text!r}") from None
    if not ranks or min(ranks) < 1 or list(ranks) != sorted(set(ranks)):
        raise UsageError(f"--ranks must be increasing positive integers, each once, not {text!r}")
    return ranks


def check_run_args(run_args: tuple[str, ...]) -> None:
    """The options for `hepbench run` must parse, and leave the job shape to `scale`."""
    for arg in run_args:
        if arg.split("=", 1)[0] in _OWN_OPTIONS:
            raise UsageError(f"hepbench scale sets {arg.split('=', 1)[0]} itself; leave it out of the run options")
    try:
        _, unknown = run_parser().parse_known_args(list(run_args))
    except SystemExit:  # argparse has printed what is wrong with which option
        raise UsageError(f"run options {' '.join(run_args)!r} are not valid for hepbench run (see above)") from None
    if unknown:
        raise UsageError(f"run options: unknown option(s) {' '.join(unknown)}")


def _horovodrun() -> str:
    local = Path(sys.executable).parent / "horovodrun"
    found = str(local) if local.exists() else shutil.which("horovodrun")
    if not found:
        raise UsageError("horovodrun is not installed: Horovod is built by `make setup` (or is in the image)")
    return found


def launcher_command(options: ScaleOptions, n: int, results: Path) -> list[str]:
    hepbench = Path(sys.executable).parent / "hepbench"
    run = [str(hepbench) if hepbench.exists() else "hepbench", "run", "--strategy", "horovod",
           "-w", str(results), "--quiet", *options.run_args]
    return [_horovodrun(), "-np", str(n), f"--{options.launcher}", "-H", options.hosts or f"localhost:{n}", *run]


def _row(n: int, results: Path, exit_code: int) -> dict:
    row = {"ranks": n, "status": "failed", "exit_code": exit_code, "summary": f"{results.name}/mlpf_summary.json",
           "train": None, "per_rank_mean": None, "per_rank_min": None, "per_rank_max": None,
           "efficiency": None, "log": None}
    try:
        report = json.loads((results / "mlpf_summary.json").read_text())
        rep = report["report"]
    except (OSError, ValueError, KeyError):
        row["log"] = f"no report (launcher exit code {exit_code}); see {results.name}/launcher.log"
        return row
    if rep["status"] != "ok" or exit_code != 0:
        row["log"] = rep.get("log") or f"launcher exit code {exit_code}"
        return row
    rates = [c["train"]["events_per_second"] for c in rep["copies"]]
    row.update(status="ok", train=rep["wl-scores"]["train"], per_rank_mean=sum(rates) / len(rates),
               per_rank_min=min(rates), per_rank_max=max(rates), log="ok")
    return row


def add_efficiency(rows: list[dict]) -> None:
    """Efficiency relative to the smallest size that succeeded."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return
    base = ok[0]
    for r in ok:
        r["efficiency"] = r["train"] / (r["ranks"] / base["ranks"] * base["train"])


def run_scale(options: ScaleOptions, stream: TextIO = sys.stderr) -> tuple[dict, int]:
    """Run every size; returns (the scaling summary, exit code: 0 only if every size succeeded)."""
    if options.launcher not in LAUNCHERS:
        raise UsageError(f"--launcher must be one of {', '.join(LAUNCHERS)}, not {options.launcher!r}")
    check_run_args(options.run_args)
    _horovodrun()
    results_dir = Path(options.results_dir)
    check_writable_dir(results_dir, "results directory")
    start = now_iso()
    rows = []
    for n in options.ranks:
        results = results_dir / f"ranks-{n}"
        results.mkdir(parents=True, exist_ok=True)
        (results / "mlpf_summary.json").unlink(missing_ok=True)  # an old report must not pass for this run's
        cmd = launcher_command(options, n, results)
        if not options.quiet:
            stream.write(f"scale: {n} rank{'s' if n > 1 else ''}: {' '.join(cmd)}\n")
        t0 = time.perf_counter()
        with open(results / "launcher.log", "w") as log:
            try:
                code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=options.timeout,
                                      env={**os.environ, **options.env}).returncode
            except subprocess.TimeoutExpired:
                code = 124
        row = _row(n, results, code)
        row["wall_seconds"] = time.perf_counter() - t0
        rows.append(row)
        if not options.quiet:
            what = f"{row['train']:.4g} events/s" if row["status"] == "ok" else f"FAILED: {row['log']}"
            stream.write(f"scale: {n} rank{'s' if n > 1 else ''}: {what} ({row['wall_seconds']:.0f} s)\n")
    add_efficiency(rows)
    summary = {"launcher": options.launcher, "hosts": options.hosts, "run_options": list(options.run_args),
               "baseline_ranks": next((r["ranks"] for r in rows if r["status"] == "ok"), None),
               "start": start, "end": now_iso(), "sizes": rows}
    validate_report(summary, SCHEMA, source="the scaling summary")
    with atomic_open(results_dir / "scaling.txt", "w") as f:
        f.write(table(summary))
    write_plot(summary, results_dir / "scaling.png")
    write_json(results_dir / "scaling.json", summary)  # last: its presence means the rest is there
    return summary, 0 if all(r["status"] == "ok" for r in rows) else 1
