"""`hepbench scale`: weak scaling. The same per-rank workload at each job size, one launcher call
per size: `hepbench run --backend tensorflow --strategy horovod` under horovodrun (--launcher gloo
or mpi), or `hepbench run --backend torch --strategy ddp` under torchrun (--launcher torchrun:
--standalone on this host; with --hosts, one torchrun per host, --nnodes with a c10d rendezvous on
the first host, the other hosts reached by ssh as horovodrun reaches them). The results are a
table, a JSON summary (results_schema/scaling.schema.json) and a PNG beside the per-size reports:

    RESULTS/ranks-N/mlpf_summary.json   the full report of the N-rank run (and launcher.log)
    RESULTS/scaling.json, scaling.txt, scaling.png

Scaling efficiency at N ranks is train(N) / ((N / N0) * train(N0)), N0 the smallest size run
(normally 1, which gives the usual train(N) / (N * train(1))).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hepbench.core.devices import VISIBILITY_VARIABLES
from hepbench.core.errors import UsageError
from hepbench.core.files import atomic_open, check_writable_dir, write_json
from hepbench.core.schema import validate_report
from hepbench.core.timestamps import now_iso
from hepbench.mlpf.report.scaling import table, write_plot
from hepbench.mlpf.run.cli import run_parser

LAUNCHERS = ("gloo", "mpi", "torchrun")  # horovodrun --gloo, horovodrun --mpi (mpirun underneath), torchrun
SCHEMA = "scaling.schema.json"
# Options `scale` sets itself for every size; passing them through would break the comparison.
_OWN_OPTIONS = ("-w", "--resultsdir", "--strategy", "-c", "--copies", "--replicas", "--backend")
RDZV_PORT = 29400  # torchrun's c10d rendezvous on the first host (torchrun's own default port)
# What a rank on another host gets of this environment (ssh starts a fresh one there), besides ScaleOptions.env.
_FORWARDED = ("HEPBENCH_", "KERAS_", "TF_CPP_", "OMP_", "GLOO_", "NCCL_", "TORCH_", *VISIBILITY_VARIABLES)
_GRACE_SECONDS = 30  # after one host's torchrun failed, how long the others get to end on their own


@dataclass(frozen=True)
class ScaleOptions:
    ranks: tuple[int, ...]
    results_dir: Path
    run_args: tuple[str, ...] = ()  # passed on to every `hepbench run`
    launcher: str = "gloo"
    hosts: str | None = None  # HOST:SLOTS,...: horovodrun -H (default localhost:N); torchrun: one per host
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


def _tool(name: str, installed_by: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise UsageError(f"{name} is not installed: {installed_by}")
    return found


def _horovodrun() -> str:
    return _tool("horovodrun", "Horovod is built by `make setup` (or is in the image)")


def _torchrun() -> str:
    return _tool("torchrun", "it comes with PyTorch: pip install 'hepbench[torch]'")


def parse_hosts(text: str) -> list[tuple[str, int]]:
    """HOST:SLOTS,... as [(host, slots)]; a UsageError naming -H otherwise."""
    hosts = []
    for item in text.split(","):
        host, _, slots = item.rpartition(":")
        if not host or not slots.isdigit() or int(slots) < 1:
            raise UsageError(f"-H/--hosts must be HOST:SLOTS,... with SLOTS >= 1, not {text!r}")
        hosts.append((host, int(slots)))
    return hosts


def place(hosts: list[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    """The first n slots, host by host: [(host, ranks on it)] for the hosts that get any."""
    placed, left = [], n
    for host, slots in hosts:
        if left:
            placed.append((host, min(slots, left)))
            left -= placed[-1][1]
    if left:
        raise UsageError(f"--ranks {n}: the hosts have {n - left} slots ({','.join(f'{h}:{s}' for h, s in hosts)})")
    return placed


def _is_local(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", socket.gethostname())


def _run_command(options: ScaleOptions, results: Path, strategy: str, backend: str) -> list[str]:
    hepbench = Path(sys.executable).parent / "hepbench"
    return [
        str(hepbench) if hepbench.exists() else "hepbench",
        "run",
        "--backend",
        backend,
        "--strategy",
        strategy,
        "-w",
        str(results),
        "--quiet",
        *options.run_args,
    ]


def _remote(host: str, cmd: list[str], env: dict) -> list[str]:
    """`cmd` on `host` over ssh, in this directory and with `env` (ssh gives it a fresh environment)."""
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    line = f"cd {shlex.quote(os.getcwd())} && exec " + shlex.join(["env", *assignments, *cmd])
    return ["ssh", "-o", "BatchMode=yes", host, line]


def launcher_commands(options: ScaleOptions, n: int, results: Path) -> list[list[str]]:
    """The commands that start an n-rank job: one horovodrun, or one torchrun per host."""
    if options.launcher != "torchrun":
        run = _run_command(options, results, "horovod", "tensorflow")
        return [[_horovodrun(), "-np", str(n), f"--{options.launcher}", "-H", options.hosts or f"localhost:{n}", *run]]
    run = _run_command(options, results, "ddp", "torch")
    if options.hosts is None:
        return [[_torchrun(), "--standalone", "--nnodes", "1", "--nproc-per-node", str(n), "--no-python", *run]]
    placed = place(parse_hosts(options.hosts), n)
    first = placed[0][0]
    if first in ("localhost", "127.0.0.1") and len(placed) > 1:  # the other hosts must reach this one
        first = socket.getfqdn()
    rendezvous = [
        "--nnodes",
        str(len(placed)),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"{first}:{RDZV_PORT}",
        "--rdzv-id",
        f"hepbench-scale-{uuid.uuid4().hex[:12]}",
    ]
    forwarded = {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED)} | options.env
    commands = []
    for host, ranks in placed:
        cmd = [_torchrun(), *rendezvous, "--nproc-per-node", str(ranks), "--no-python", *run]
        commands.append(cmd if _is_local(host) else _remote(host, cmd, forwarded))
    return commands


def _launch(commands: list[list[str]], log, timeout: float | None, env: dict) -> int:
    """Run the commands side by side; the first non-zero exit code (124: past `timeout`), else 0.
    When one fails, the others get a grace period to end on their own (their ranks see the job
    break), then are stopped."""
    procs = [subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env) for cmd in commands]
    deadline = None if timeout is None else time.monotonic() + timeout
    code = 0
    while any(p.poll() is None for p in procs):
        failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
        if failed and not code:
            code = failed[0]
            grace = time.monotonic() + _GRACE_SECONDS
            deadline = grace if deadline is None else min(deadline, grace)
        if deadline is not None and time.monotonic() > deadline:
            code = code or 124
            for p in procs:
                if p.poll() is None:
                    p.terminate()  # horovodrun and torchrun stop their ranks on SIGTERM
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            break
        time.sleep(0.2)
    return code or next((p.returncode for p in procs if p.returncode), 0)


def _row(n: int, results: Path, exit_code: int) -> dict:
    row = {
        "ranks": n,
        "status": "failed",
        "exit_code": exit_code,
        "summary": f"{results.name}/mlpf_summary.json",
        "train": None,
        "per_rank_mean": None,
        "per_rank_min": None,
        "per_rank_max": None,
        "efficiency": None,
        "log": None,
    }
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
    row.update(
        status="ok",
        train=rep["wl-scores"]["train"],
        per_rank_mean=sum(rates) / len(rates),
        per_rank_min=min(rates),
        per_rank_max=max(rates),
        log="ok",
    )
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
    if options.launcher == "torchrun":
        _torchrun()
        if options.hosts is not None:
            place(parse_hosts(options.hosts), max(options.ranks))
    else:
        _horovodrun()
    results_dir = Path(options.results_dir)
    check_writable_dir(results_dir, "results directory")
    start = now_iso()
    rows = []
    for n in options.ranks:
        results = results_dir / f"ranks-{n}"
        results.mkdir(parents=True, exist_ok=True)
        (results / "mlpf_summary.json").unlink(missing_ok=True)  # an old report must not pass for this run's
        commands = launcher_commands(options, n, results)
        if not options.quiet:
            for cmd in commands:
                stream.write(f"scale: {n} rank{'s' if n > 1 else ''}: {shlex.join(cmd)}\n")
        t0 = time.perf_counter()
        with open(results / "launcher.log", "w") as log:
            code = _launch(commands, log, options.timeout, {**os.environ, **options.env})
        row = _row(n, results, code)
        row["wall_seconds"] = time.perf_counter() - t0
        rows.append(row)
        if not options.quiet:
            what = f"{row['train']:.4g} events/s" if row["status"] == "ok" else f"FAILED: {row['log']}"
            stream.write(f"scale: {n} rank{'s' if n > 1 else ''}: {what} ({row['wall_seconds']:.0f} s)\n")
    add_efficiency(rows)
    summary = {
        "launcher": options.launcher,
        "hosts": options.hosts,
        "run_options": list(options.run_args),
        "baseline_ranks": next((r["ranks"] for r in rows if r["status"] == "ok"), None),
        "start": start,
        "end": now_iso(),
        "sizes": rows,
    }
    validate_report(summary, SCHEMA, source="the scaling summary")
    with atomic_open(results_dir / "scaling.txt", "w") as f:
        f.write(table(summary))
    write_plot(summary, results_dir / "scaling.png")
    write_json(results_dir / "scaling.json", summary)  # last: its presence means the rest is there
    return summary, 0 if all(r["status"] == "ok" for r in rows) else 1
