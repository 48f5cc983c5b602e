"""`hepbench run`: validate -> plan -> verify -> execute -> collect -> report, as HEPscore's runner does.

    validate  every input is checked (options, data set, devices, CPUs); nothing is written
    plan      the copies' specs; the last check claims the results directory (the first write)
    verify    every file of the data set against the checksums recorded when it was built; a
              changed, truncated, missing or extra file fails the run here (failure report, exit 1)
    execute   the copies run; all of them stop when one fails or a SIGTERM/SIGINT arrives
    collect   their entries and the run's context become one report (also for a failed run)
    report    the validated report, version.json and inputs.log are written (and --mllog)

The strategy plugs into the first three: `LocalCopies` (single: independent copy processes;
mirrored: one process over several devices) here, `HorovodRank` (this process is one rank of a
horovodrun/mpirun/srun job) in horovod.py, `DdpRank` (one rank of a torchrun/srun PyTorch DDP job)
in ddp.py. Which backend the copies train with (--backend) is resolved before any of them: its
framework must be installed and must have the strategy. The coordinating process never imports a
framework (tensorflow, jax, torch, keras).

Each rank of a Horovod or DDP job verifies the data set it will read (the ranks of a multi-node
job may each read their own node's copy: a node-local disk, the image's embedded subset), and the
ranks agree on the result, so that all of them stop when one copy is damaged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from hepbench.core import devices
from hepbench.core.errors import DataIntegrityError, UsageError
from hepbench.core.files import check_writable_dir
from hepbench.core.hostinfo import usable_cpus
from hepbench.core.timestamps import now_iso
from hepbench.mlpf.data.built import built_dir, describe_built
from hepbench.mlpf.data.integrity import read_manifest, verify
from hepbench.mlpf.engines.backends import require_backend
from hepbench.mlpf.report.mllog import write_mllog
from hepbench.mlpf.report.summary import write_report
from hepbench.mlpf.run.collect import collect
from hepbench.mlpf.run.copy import RANK_STRATEGIES, CopySpec, failed_entry
from hepbench.mlpf.run.horovod import HorovodRank
from hepbench.mlpf.run.plan import (
    DeviceUnavailable,
    Inputs,
    Outcome,
    Plan,
    RunOptions,
    Strategy,
    check_options,
    plan_copies,
    plan_mirrored,
    resolve_device,
    resolve_strategy,
    select_cpus,
    visible_gpus,
)
from hepbench.mlpf.run.ranks import RankJob
from hepbench.mlpf.run.signals import Interrupted, interruptible

_STOP_GRACE_SECONDS = 60  # a copy finishes its current step, then writes its result


class LocalCopies:
    """single: `--copies` independent processes; mirrored: one process over several devices."""

    def __init__(self, strategy: str):
        self.strategy = strategy

    def finish(self) -> None:
        """Nothing to wait for: the copies have ended and this process wrote the report."""

    def validate(self, options: RunOptions) -> Inputs:
        """Options, data set, device and CPUs; raises UsageError (or DataFormatError), writes nothing."""
        if options.replicas is not None and self.strategy != "mirrored":
            raise UsageError("--replicas belongs to --strategy mirrored")
        if options.copies < 1:
            raise UsageError(f"--copies must be at least 1, not {options.copies}")
        dataset = describe_built(options.data_dir)
        check_options(options, dataset)
        vendor = devices.node_vendor() if options.device != "cpu" else None
        gpus = visible_gpus(options.backend, vendor) if vendor is not None else []
        cpus = select_cpus(usable_cpus(), options.ncores)
        try:
            device = resolve_device(options.device, gpus, options.backend)
        except DeviceUnavailable as e:  # reported as the GPU run it is, failed before anything starts
            return Inputs(dataset=dataset, device="gpu", gpus=[], cpus=cpus, refusal=e)
        return Inputs(dataset=dataset, device=device, gpus=gpus, cpus=cpus, vendor=vendor.name if gpus else None)

    def plan(self, options: RunOptions, inputs: Inputs) -> Plan:
        """The copies' specs; then the results (and --mllog) directory must be writable: the first write."""
        refused = inputs.refusal is not None
        if self.strategy == "mirrored":
            specs = [plan_mirrored(options, inputs.device, inputs.gpus, inputs.cpus, refused, inputs.vendor)]
        else:
            specs = plan_copies(options, inputs.device, inputs.gpus, inputs.cpus, refused, inputs.vendor)
        check_writable_dir(Path(options.results_dir), "results directory")
        if options.mllog is not None:
            check_writable_dir(Path(options.mllog).resolve().parent, "--mllog directory")
        return Plan(
            specs=specs,
            dataset=inputs.dataset,
            copies=len(specs),
            gpu_vendor=inputs.vendor,
            mllog=options.mllog,
            refusal=inputs.refusal,
        )

    def execute(self, options: RunOptions, plan: Plan, stream: TextIO) -> Outcome:
        """Start one process per spec and wait; one failure (or SIGTERM/SIGINT) stops them all."""
        if not options.quiet:
            stream.write(_announcement(options, plan))
        start_iso, start = now_iso(), time.perf_counter()
        log, exit_code = None, 0
        workdir = Path(tempfile.mkdtemp(prefix="hepbench-run-"))
        try:
            procs: list[subprocess.Popen] = []
            try:
                procs = _start(plan.specs, workdir, plan.gpu_vendor)
                stopped = _supervise(procs)
            except Interrupted as e:
                log, exit_code = f"{e} after {time.perf_counter() - start:.0f} s", e.exit_code
                _stop(procs)
                stopped = {}
            entries, context = _read_results(plan.specs, procs, workdir, stopped)
        finally:
            if options.keep_work:
                shutil.copytree(workdir, Path(options.results_dir) / "mlpf-work", dirs_exist_ok=True)
            shutil.rmtree(workdir, ignore_errors=True)
        return Outcome(entries=entries, context=context, log=log, exit_code=exit_code, start_iso=start_iso, start=start)


def _announcement(options: RunOptions, plan: Plan) -> str:
    cfg, s, dataset = options.config, plan.specs[0], plan.dataset
    on = f"{s.replicas} {s.device} replicas (mirrored)" if s.strategy == "mirrored" else s.device
    n = len(plan.specs)
    return (
        f"mlpf-bmk: {n} cop{'y' if n == 1 else 'ies'} on {on} ({s.backend}), {s.threads} thread(s) each; "
        f"{cfg.bench.windows} windows of {s.events_per_window} events after {cfg.bench.warmup_steps} warm-up "
        f"step(s); {dataset['name']} {dataset['version']} ({'synthetic' if dataset['synthetic'] else 'published'}, "
        f"{dataset['train_events']} train events)\n"
    )


def _child_env(spec: CopySpec, vendor: str | None) -> dict:
    """A copy's environment: its threads and, on a node with GPUs of `vendor`, its own GPUs through
    the vendor's visibility variable (a GPU copy) or none of them (a CPU copy)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec.threads), "PYTHONUNBUFFERED": "1"}
    if vendor is None:
        return env
    if spec.device == "gpu":
        devices.vendor(vendor).assign_env(env, [str(i) for i in spec.gpu_indices or [spec.gpu_index]])
    else:
        devices.vendor(vendor).hide_env(env)  # a CPU run must not touch (or allocate on) a GPU
    return env


def _start(specs: list[CopySpec], workdir: Path, vendor: str | None) -> list[subprocess.Popen]:
    procs = []
    for spec in specs:
        spec_path = workdir / f"copy{spec.copy}.spec.json"
        spec_path.write_text(json.dumps(spec.to_dict()))
        cmd = [
            sys.executable,
            "-m",
            "hepbench.mlpf.run.worker",
            str(spec_path),
            str(workdir / f"copy{spec.copy}.result.json"),
        ]
        procs.append(subprocess.Popen(cmd, env=_child_env(spec, vendor)))
    return procs


def _stop(procs: list[subprocess.Popen], signum: int = signal.SIGTERM) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signum)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _supervise(procs: list[subprocess.Popen]) -> dict[int, str]:
    """Wait for every copy; when one fails, stop the others. Returns {copy: why it was stopped}."""
    stopped: dict[int, str] = {}
    while any(p.poll() is None for p in procs):
        failed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
        if failed and not stopped:
            running = [i for i, p in enumerate(procs) if p.poll() is None]
            stopped = {i: f"stopped: copy {failed[0]} failed" for i in running}
            _stop([procs[i] for i in running])
            break
        time.sleep(0.2)
    return stopped


def _read_results(
    specs: list[CopySpec], procs: list[subprocess.Popen], workdir: Path, stopped: dict[int, str]
) -> tuple[list[dict], dict]:
    """Each copy's entry from its result file (a failed entry where there is none) and the context."""
    entries, context = [], {}
    for spec, proc in zip(specs, procs):
        path = workdir / f"copy{spec.copy}.result.json"
        try:
            result = json.loads(path.read_text())
            entry = result["entry"]
            if spec.copy == 0 or not context:
                context = result.get("context", {})
        except (OSError, ValueError, KeyError):
            entry = failed_entry(spec, f"the copy process ended with exit code {proc.returncode} before reporting")
        if spec.copy in stopped and entry["status"] != "ok":
            entry["log"] = stopped[spec.copy]
        entries.append(entry)
    return entries, context


def choose_strategy(options: RunOptions) -> Strategy:
    """`--strategy` of `--backend` (auto: horovod with tensorflow, ddp with torch when a launcher
    started this process as a rank, else single); a UsageError when the backend lacks the strategy,
    a MissingExtra when its framework is not installed. Imports no framework."""
    strategy = resolve_strategy(options.strategy, options.backend)
    require_backend(options.backend)
    if strategy == "horovod":
        return HorovodRank()
    if strategy == "ddp":
        from hepbench.mlpf.run.ddp import DdpRank  # here: no other strategy's run loads the DDP rank

        return DdpRank()
    return LocalCopies(strategy)


def _verify_agreed(strategy: Strategy, where: Path) -> tuple[str | None, str | None]:
    """(the verified digest, None) or (None, what is wrong). The ranks of a job gather their
    findings, so that all of them stop together when one rank's copy is damaged; identical
    messages (ranks reading one shared copy) are told once."""
    try:
        digest, problem = verify(where), None
    except DataIntegrityError as e:
        digest, problem = None, str(e)
    if not isinstance(strategy, RankJob):
        return digest, problem
    ranks_of: dict[str, list[int]] = {}
    for rank, found in enumerate(strategy.gather(problem)):
        if found:
            ranks_of.setdefault(found, []).append(rank)
    if not ranks_of:
        return digest, None
    # The job is whole: finish() then keeps every rank until rank 0 has written the failure report
    # (a launcher ends the job as soon as one rank exits with an error).
    strategy.reported = True
    return None, "; ".join(f"rank{'s' * (len(r) > 1)} {', '.join(map(str, r))}: {m}" for m, r in ranks_of.items())


def _refused(plan: Plan, log: str, exit_code: int, start_iso: str, start: float) -> Outcome:
    """The outcome of a run stopped before its copies started: every copy (or rank) failed with `log`."""
    first, specs = plan.specs[0], plan.specs
    if first.strategy in RANK_STRATEGIES:  # one entry per rank: rank 0 reports for the job
        specs = [
            dataclasses.replace(first, copy=r, local_rank=first.local_rank if r == first.copy else None)
            for r in range(plan.copies)
        ]
    return Outcome(
        entries=[failed_entry(spec, log) for spec in specs],
        context={},
        log=log,
        exit_code=exit_code,
        start_iso=start_iso,
        start=start,
        publish=first.copy == 0,
    )


def verify_data(strategy: Strategy, options: RunOptions, plan: Plan, stream: TextIO) -> tuple[Plan, Outcome | None]:
    """The `verify` phase: re-hash every file of the data set against its recorded checksums.

    Returns (the plan whose dataset carries the verified digest as its checksum, None), or, when a
    file is missing, added, truncated or changed (on any rank: exit 1) or a SIGTERM/SIGINT arrives
    (128 + the signal), (the plan, a failed outcome that says why)."""
    start_iso, start = now_iso(), time.perf_counter()
    where = built_dir(options.data_dir)
    try:
        digest, problem = _verify_agreed(strategy, where)
    except Interrupted as e:
        return plan, _refused(plan, str(e), e.exit_code, start_iso, start)
    if problem is not None:
        stream.write(f"hepbench: error: {problem}\n")
        return plan, _refused(plan, problem, 1, start_iso, start)
    if not options.quiet:
        manifest, seconds = read_manifest(where), time.perf_counter() - start
        stream.write(
            f"data set verified: {len(manifest.files)} files, {manifest.total_bytes / 1e6:.1f} MB in "
            f"{seconds:.2f} s, sha256 {digest[:12]}\n"
        )
    return dataclasses.replace(plan, dataset={**plan.dataset, "checksum": digest}), None


def report_run(
    options: RunOptions, plan: Plan, outcome: Outcome, report: dict | None, stream: TextIO
) -> tuple[dict | None, int, Path | None]:
    """The `report` phase: write the report where this process writes one (and the plan's MLLOG
    file); returns (report, exit code, path of the summary)."""
    if report is None:  # a Horovod rank > 0: rank 0 reports for the job
        return None, outcome.exit_code or int(any(e["status"] != "ok" for e in outcome.entries)), None
    path = write_report(report, Path(options.results_dir))
    if plan.mllog is not None:
        write_mllog(report, Path(plan.mllog))
    if not outcome.complete:  # a Horovod job that lost a rank: the report says so; no score line
        return None, outcome.exit_code, path
    exit_code = outcome.exit_code or (0 if report["report"]["status"] == "ok" else 1)
    if not options.quiet:
        stream.write(f"report: {path}\n")
    return report, exit_code, path


def run_benchmark(options: RunOptions, stream: TextIO = sys.stderr) -> tuple[dict | None, int, Path | None]:
    """Run the benchmark; returns (report, exit code, path of the written summary).

    Bad input raises UsageError (or another HepbenchError) before anything is written. On a
    Horovod rank > 0 the report and path are None (rank 0 writes the job's report); on rank 0 of a
    job that lost a rank the report is None (no score to print) and the path is the failure report's.
    """
    strategy = choose_strategy(options)
    inputs = strategy.validate(options)
    options = options.for_device(inputs.device)  # a GPU run: the configuration with its GPU defaults
    plan = strategy.plan(options, inputs)
    # From here a SIGTERM/SIGINT raises Interrupted once: the copies stop, the report is still written.
    with interruptible():
        if plan.refusal is not None:  # --device gpu without a GPU: a failure report, nothing verified or timed
            stream.write(f"hepbench: error: {plan.refusal}\n")
            refused = _refused(plan, str(plan.refusal), plan.refusal.exit_code, now_iso(), time.perf_counter())
        else:
            plan, refused = verify_data(strategy, options, plan, stream)  # before anything is timed
        outcome = refused or strategy.execute(options, plan, stream)
        report = collect(options, plan, outcome)
        result = report_run(options, plan, outcome, report, stream)
        strategy.finish()  # ranks: only once rank 0's report is written (a launcher may then end the job)
        return result
