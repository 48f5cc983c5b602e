"""What the ranks of a multi-process job share, whichever launcher started them and whichever
library carries their gradients: Horovod (horovod.HorovodRank) or PyTorch DDP (ddp.DdpRank).

`RankJob` is the strategy benchmark.run_benchmark plugs into its phases; a subclass says only how
this process joins the job (`join`), how the ranks exchange Python objects (`gather`), what the
report's benchmark block adds (`benchmark`) and how the process leaves the job (`leave`):

    validate  join the job, then every rank checks its input; all ranks stop together if any of
              them found a problem (or if they chose different devices)
    plan      this rank's spec: shard `rank` of `size`, the GPU of its local rank
    execute   train, then gather every rank's entry; rank 0 alone writes the report, whose
              `train` score is the sum of the ranks' rates (one row per rank: host, local rank,
              device)
    finish    after the report phase: all ranks wait for rank 0's report, then leave the job

A rank that dies or hangs must not hang the job: a `Watchdog` ends this rank (exit 1) when no step
has finished for `rank_timeout` seconds, after rank 0 has written a failure report. Rank 0 writes a
failure report at the start too, replaced at the end, so that even a job killed outright leaves one.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TextIO

from hepbench.core.devices import node_vendor
from hepbench.core.errors import HepbenchError, UsageError
from hepbench.core.files import check_writable_dir
from hepbench.core.timestamps import now_iso
from hepbench.mlpf.data.built import describe_built
from hepbench.mlpf.report.summary import write_report
from hepbench.mlpf.run.collect import collect
from hepbench.mlpf.run.copy import CopySpec, failed_entry, run_copy
from hepbench.mlpf.run.plan import Inputs, Outcome, Plan, RunOptions, check_options, rank_spec, resolve_device
from hepbench.mlpf.run.signals import Interrupted, deferred

UNFINISHED = "rank 0: the job ended before the ranks reported their results (a rank died, or the job was killed)"


class Watchdog:
    """Calls `on_timeout` and ends the process when `beat()` has not been called for `timeout` s."""

    def __init__(self, timeout: float, on_timeout):
        self.timeout, self.on_timeout = timeout, on_timeout
        self.last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hepbench-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def beat(self) -> None:
        self.last = time.monotonic()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(min(5.0, self.timeout / 4)):
            if time.monotonic() - self.last > self.timeout:
                try:
                    self.on_timeout()
                finally:
                    os._exit(1)  # the main thread is stuck in a collective: nothing else would end it


def unreported(spec: CopySpec, size: int, first: dict) -> list[dict]:
    """Rank 0's entry `first`, then a failed entry for every other rank (their results are unknown)."""
    return [first] + [
        failed_entry(dataclasses.replace(spec, copy=r, local_rank=None), "did not report") for r in range(1, size)
    ]


class RankJob(ABC):
    """One rank of a job: the strategy's validate, plan and execute phases (module docstring)."""

    strategy: str  # the CopySpec's and the report's strategy: "horovod" or "ddp"
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    reported: bool = False  # every rank's entry was gathered: the job is whole until finish()

    @abstractmethod
    def join(self, options: RunOptions) -> list[str]:
        """Join the job (set rank, size and local_rank) and return the GPUs this rank may use.
        Raises only where the job cannot be formed; input problems are validate's."""

    @abstractmethod
    def gather(self, obj) -> list:
        """`obj` of every rank, in rank order (a collective: every rank must call it)."""

    @abstractmethod
    def benchmark(self) -> dict:
        """What the report's benchmark block says about how the ranks talk."""

    def leave(self) -> None:  # noqa: B027 - optional: most launchers need nothing done
        """Leave the job once every rank has reported (nothing to do unless the library needs it)."""

    def validate(self, options: RunOptions) -> Inputs:
        """Join the job, then check this rank's input; raises on every rank if any rank found a problem."""
        gpus = self.join(options)
        problem, dataset, device = None, {}, "cpu"
        try:
            dataset = describe_built(options.data_dir)
            check_options(options, dataset)
            if self.rank == 0:
                check_writable_dir(Path(options.results_dir), "results directory")
            device = resolve_device(options.device, gpus, options.backend)
        except HepbenchError as e:
            problem = f"rank {self.rank}: {e}"
        found = self.gather((problem, device))
        problems = [p for p, _ in found if p]
        devices = sorted({d for p, d in found if not p})
        if not problems and len(devices) > 1:  # --device auto on a mix of GPU and CPU-only nodes
            problems = [f"the ranks chose different devices ({' and '.join(devices)}): set --device cpu or gpu"]
        if problems:
            self.leave()
            raise UsageError("; ".join(problems))
        vendor = node_vendor() if device == "gpu" else None
        return Inputs(dataset=dataset, device=device, gpus=gpus, vendor=vendor.name if vendor else None)

    def plan(self, options: RunOptions, inputs: Inputs) -> Plan:
        spec = rank_spec(
            options, inputs.device, self.rank, self.size, self.local_rank, strategy=self.strategy, vendor=inputs.vendor
        )
        return Plan(specs=[spec], dataset=inputs.dataset, copies=self.size, benchmark=self.benchmark())

    def execute(self, options: RunOptions, plan: Plan, stream: TextIO) -> Outcome:
        """Train this rank's shard and gather every rank's entry (rank 0 keeps a failure report on disk meanwhile)."""
        spec, size, rank = plan.specs[0], self.size, self.rank
        start_iso, start = now_iso(), time.perf_counter()

        def write_failure(entries: list[dict], log: str) -> None:
            outcome = Outcome(entries=entries, context={}, log=log, exit_code=1, start_iso=start_iso, start=start)
            with deferred():  # a SIGTERM now (the launcher ending the job) waits for the report
                write_report(collect(options, plan, outcome), Path(options.results_dir))

        def timed_out() -> None:
            message = f"rank {rank}: no training step finished for {options.rank_timeout:g} s (a rank died or hangs)"
            stream.write(f"hepbench: error: {message}\n")
            if rank == 0:
                write_failure(unreported(spec, size, failed_entry(spec, message)), message)

        if rank == 0:
            # Written now, replaced at the end: a job killed outright (a launcher's SIGKILL after its
            # short grace, the scheduler, the OOM killer) still leaves a report that says it failed.
            write_failure(unreported(spec, size, failed_entry(spec, "did not report")), UNFINISHED)
        watchdog = Watchdog(options.rank_timeout, timed_out).start()
        entry, context, gathered, exit_code = failed_entry(spec, "did not start"), {}, None, 1
        try:
            try:
                entry, context = run_copy(spec, stream, heartbeat=watchdog.beat)
                if "signal" in context:
                    exit_code = 128 + context["signal"]
                else:
                    watchdog.beat()
                    gathered = self.gather((entry, context))
            except Interrupted:
                raise
            except Exception as e:  # noqa: BLE001 - the library's error when another rank is gone
                # A copy that failed already (its collective failed when another rank died) keeps that
                # first cause in its log; gathering can only fail the same way after it.
                if entry["status"] == "ok":
                    entry["status"], entry["log"] = "failed", f"gathering the ranks' results failed: {e}"
        # Outside the handler above: the launcher's SIGTERM often follows a lost rank's error at once,
        # and may land while that error is being handled.
        except Interrupted as e:  # while gathering: the launcher is ending the job
            exit_code, entry["status"] = e.exit_code, "failed"
            if entry["log"] in ("ok", "did not start"):
                entry["log"] = str(e)
        finally:
            watchdog.stop()
        if gathered is None:  # another rank is gone, or this one was stopped: rank 0 reports what is known
            entries, log = unreported(spec, size, entry), f"rank 0: {entry['log']}"
            if rank == 0:  # at once: the launcher's SIGTERM or SIGKILL may cut the report phase short
                write_failure(entries, log)
            return Outcome(
                entries=entries,
                context=context,
                log=log,
                exit_code=exit_code,
                start_iso=start_iso,
                start=start,
                publish=rank == 0,
                complete=False,
            )
        self.reported = True
        return Outcome(
            entries=[e for e, _ in gathered],
            context=gathered[0][1],
            log=None,
            exit_code=0,
            start_iso=start_iso,
            start=start,
            publish=rank == 0,
        )

    def finish(self) -> None:
        """After the report phase: every rank waits until rank 0 has written the report, then leaves the
        job. A launcher ends the whole job as soon as one rank exits with an error (torchrun, horovodrun),
        which must not cut rank 0's report short. Where a rank was lost there is no job to wait on."""
        if not self.reported:
            return
        try:
            self.gather(None)
        except Exception:  # noqa: BLE001 - rank 0 ended before its report (the report phase raised)
            return
        self.leave()
