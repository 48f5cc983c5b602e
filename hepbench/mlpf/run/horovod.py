"""`hepbench run --strategy horovod`: this process is one rank of a job started by horovodrun,
mpirun or srun. Every rank trains its shard of the data with gradients averaged over all ranks;
the ranks' entries are gathered with `allgather_object` and rank 0 alone writes the report, whose
`train` score is the sum of the ranks' rates (one row per rank: host, local rank, device).

`HorovodRank` is the strategy benchmark.run_benchmark plugs into its phases: `validate` (every
rank checks its input; all ranks stop together if any found a problem), `plan` (this rank's spec)
and `execute` (train, then gather). A rank that dies or hangs must not hang the job: a watchdog
ends this rank (exit 1) when no step has finished for `rank_timeout` seconds, after rank 0 has
written a failure report. Rank 0 writes a failure report at the start too, replaced at the end,
so that even a job killed outright leaves one.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import TextIO

from hepbench.core.errors import HepbenchError, UsageError
from hepbench.core.files import check_writable_dir
from hepbench.core.timestamps import now_iso
from hepbench.mlpf.data.built import describe_built
from hepbench.mlpf.report.summary import write_report
from hepbench.mlpf.run.collect import collect
from hepbench.mlpf.run.copy import CopySpec, failed_entry, run_copy
from hepbench.mlpf.run.plan import (Inputs, Outcome, Plan, RunOptions, check_options, launcher_size, rank_spec,
                                    resolve_device)
from hepbench.mlpf.run.signals import Interrupted


class Watchdog:
    """Calls `on_timeout` and ends the process when `beat()` has not been called for `timeout` s."""

    def __init__(self, timeout: float, on_timeout):
        self.timeout, self.on_timeout = timeout, on_timeout
        self.last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hepbench-watchdog", daemon=True)

    def start(self) -> "Watchdog":
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


def _configure_tensorflow(options, local_rank: int) -> list:
    """Threads and this rank's GPU, before any TensorFlow op runs (Horovod's first collective
    initialises TensorFlow, after which neither can change). Returns the GPUs TensorFlow sees."""
    # Imports TensorFlow: only a rank (never the coordinator) gets here.
    from hepbench.mlpf.engines.tensorflow import configure_horovod_rank

    return configure_horovod_rank(options.threads or len(os.sched_getaffinity(0)), options.device, local_rank)


_UNFINISHED = "rank 0: the job ended before the ranks reported their results (a rank died, or the job was killed)"


def _unreported(spec: CopySpec, size: int, first: dict) -> list[dict]:
    return [first] + [failed_entry(dataclasses.replace(spec, copy=r, local_rank=None), "did not report")
                      for r in range(1, size)]


class HorovodRank:
    """One rank of a Horovod job: the strategy's validate, plan and execute phases."""

    def validate(self, options: RunOptions) -> Inputs:
        """Start Horovod, then check this rank's input; raises on every rank if any rank found a problem."""
        import horovod.tensorflow as hvd  # imports TensorFlow: only a rank (never the coordinator) needs it

        hvd.init()
        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        self.controller = "mpi" if hvd.mpi_enabled() else "gloo"  # mpirun/srun: MPI; horovodrun --gloo: Gloo
        if self.size == 1 and launcher_size() > 1:  # n lone 1-rank jobs would each write a report as rank 0
            raise UsageError(f"the launcher started {launcher_size()} processes, but Horovod sees only this one: "
                             f"Horovod was built without MPI (mpi built: {hvd.mpi_built()}) or its MPI does not "
                             "understand this launcher (srun: try another --mpi plugin, or mpirun)")
        gpus = [str(i) for i in range(len(_configure_tensorflow(options, self.local_rank)))]
        # Every rank checks its input; all of them stop if any of them found a problem.
        problem, dataset, device = None, {}, "cpu"
        try:
            dataset = describe_built(options.data_dir)
            check_options(options, dataset)
            if self.rank == 0:
                check_writable_dir(Path(options.results_dir), "results directory")
            device = resolve_device(options.device, gpus)
        except HepbenchError as e:
            problem = f"rank {self.rank}: {e}"
        problems = [p for p in hvd.allgather_object(problem) if p]
        if problems:
            raise UsageError("; ".join(problems))
        return Inputs(dataset=dataset, device=device, gpus=gpus)

    def plan(self, options: RunOptions, inputs: Inputs) -> Plan:
        spec = rank_spec(options, inputs.device, self.rank, self.size, self.local_rank)
        return Plan(specs=[spec], dataset=inputs.dataset, copies=self.size, benchmark={"controller": self.controller})

    def execute(self, options: RunOptions, plan: Plan, stream: TextIO) -> Outcome:
        """Train this rank's shard and gather every rank's entry (rank 0 keeps a failure report on disk meanwhile)."""
        spec, size, rank = plan.specs[0], self.size, self.rank
        start_iso, start = now_iso(), time.perf_counter()

        def write_failure(entries: list[dict], context: dict, log: str) -> None:
            outcome = Outcome(entries=entries, context=context, log=log, exit_code=1, start_iso=start_iso, start=start)
            write_report(collect(options, plan, outcome), Path(options.results_dir))

        def timed_out() -> None:
            message = f"rank {rank}: no training step finished for {options.rank_timeout:g} s (a rank died or hangs)"
            stream.write(f"hepbench: error: {message}\n")
            if rank == 0:
                write_failure(_unreported(spec, size, failed_entry(spec, message)), {}, message)

        if rank == 0:
            # Written now, replaced at the end: a job killed outright (a launcher's SIGKILL after its
            # short grace, the scheduler, the OOM killer) still leaves a report that says it failed.
            write_failure(_unreported(spec, size, failed_entry(spec, "did not report")), {}, _UNFINISHED)
        watchdog = Watchdog(options.rank_timeout, timed_out).start()
        entry, context, gathered, exit_code = failed_entry(spec, "did not start"), {}, None, 1
        try:
            entry, context = run_copy(spec, stream, heartbeat=watchdog.beat)
            if "signal" in context:
                exit_code = 128 + context["signal"]
            else:
                watchdog.beat()
                gathered = self.hvd.allgather_object((entry, context))
        except Interrupted as e:  # while gathering: the launcher is ending the job
            exit_code, entry["status"] = e.exit_code, "failed"
            if entry["log"] == "ok":
                entry["log"] = str(e)
        except Exception as e:  # noqa: BLE001 - Horovod's error when another rank is gone
            entry["status"], entry["log"] = "failed", f"gathering the ranks' results failed: {e}"
        finally:
            watchdog.stop()
        if gathered is None:  # another rank is gone, or this one was stopped: rank 0 reports what is known
            return Outcome(entries=_unreported(spec, size, entry), context=context, log=f"rank 0: {entry['log']}",
                           exit_code=exit_code, start_iso=start_iso, start=start, publish=rank == 0, complete=False)
        return Outcome(entries=[e for e, _ in gathered], context=gathered[0][1], log=None, exit_code=0,
                       start_iso=start_iso, start=start, publish=rank == 0)
