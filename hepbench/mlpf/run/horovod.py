"""`hepbench run --strategy horovod`: this process is one rank of a job started by horovodrun,
mpirun or srun. Every rank trains its shard of the data with gradients averaged over all ranks;
the ranks' entries are gathered with `allgather_object` and rank 0 alone writes the report, whose
`train` score is the sum of the ranks' rates (one row per rank: host, local rank, device).

A rank that dies or hangs must not hang the job: a watchdog ends this rank (exit 1) when no step
has finished for `rank_timeout` seconds, after rank 0 has written a failure report. Rank 0 writes
a failure report at the start too, replaced at the end, so that even a job killed outright leaves one.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from hepbench.mlpf.data.built import describe_built
from hepbench.core.errors import HepbenchError, UsageError
from hepbench.mlpf.report.summary import build_report, write_report
from hepbench.mlpf.run.copy import CopySpec, failed_entry, run_copy
from hepbench.mlpf.run.signals import Interrupted, interruptible


# Job sizes as launchers export them: mpirun (OpenMPI), PMI/PMI-2 (MPICH, srun --mpi=pmi2) and
# srun itself (a job step's task count; the batch script's own step has 1 task, so it is not a rank).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS")


def launcher_size() -> int:
    """The number of processes the launcher says it started (1 if none says so)."""
    sizes = [os.environ.get(v, "") for v in _SIZE_VARIABLES]
    return max([int(s) for s in sizes if s.isdigit()] + [1])


def launched_as_rank() -> bool:
    """True when horovodrun, mpirun or srun started this process as one of several ranks."""
    return os.environ.get("HOROVOD_RANK") is not None or launcher_size() > 1


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
    import tensorflow as tf

    threads = options.threads or len(os.sched_getaffinity(0))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.config.set_visible_devices([] if options.device == "cpu" else gpus[local_rank % len(gpus)], "GPU")
    return gpus


def _rank_spec(options, dataset: dict, gpus: list, rank: int, size: int, local_rank: int) -> CopySpec:
    from hepbench.mlpf.config import config_to_dict
    from hepbench.mlpf.run.benchmark import check_options, check_writable_dir, resolve_device

    check_options(options, dataset)
    if rank == 0:
        check_writable_dir(Path(options.results_dir), "results directory")
    device = resolve_device(options.device, [str(i) for i in range(len(gpus))])
    bench = options.config.bench
    return CopySpec(
        copy=rank, copies=size, config=config_to_dict(options.config), data_dir=str(options.data_dir),
        device=device, gpu_index=local_rank if device == "gpu" else None,
        cpus=None,  # the launcher's binding (mpirun --bind-to, srun --cpu-bind) stays as it is
        threads=options.threads or len(os.sched_getaffinity(0)),
        events_per_window=options.events or (bench.gpu_events_per_window if device == "gpu" else bench.cpu_events_per_window),
        validation_events=bench.gpu_validation_events if device == "gpu" else bench.cpu_validation_events,
        quiet=options.quiet, strategy="horovod", local_rank=local_rank, num_workers=size,
    )


_UNFINISHED = "rank 0: the job ended before the ranks reported their results (a rank died, or the job was killed)"


def _unreported(spec: CopySpec, size: int, first: dict) -> list[dict]:
    return [first] + [failed_entry(dataclasses.replace(spec, copy=r, local_rank=None), "did not report")
                      for r in range(1, size)]


def run_horovod(options, stream: TextIO = sys.stderr) -> tuple[dict | None, int, Path | None]:
    """Run this rank; returns (report on rank 0 else None, exit code, summary path on rank 0)."""
    import horovod.tensorflow as hvd

    from hepbench.mlpf.run.benchmark import now_iso, run_context

    hvd.init()
    rank, size, local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
    controller = "mpi" if hvd.mpi_enabled() else "gloo"  # mpirun/srun: MPI; horovodrun --gloo: Gloo
    if size == 1 and launcher_size() > 1:  # n lone 1-rank jobs would each write a report as rank 0
        raise UsageError(f"the launcher started {launcher_size()} processes, but Horovod sees only this one: "
                         f"Horovod was built without MPI (mpi built: {hvd.mpi_built()}) or its MPI does not "
                         "understand this launcher (srun: try another --mpi plugin, or mpirun)")
    gpus = _configure_tensorflow(options, local_rank)
    # Every rank checks its input; all of them stop if any of them found a problem.
    problem, spec, dataset = None, None, None
    try:
        dataset = describe_built(options.data_dir)
        spec = _rank_spec(options, dataset, gpus, rank, size, local_rank)
    except HepbenchError as e:
        problem = f"rank {rank}: {e}"
    problems = [p for p in hvd.allgather_object(problem) if p]
    if problems:
        raise UsageError("; ".join(problems))

    start_iso, start = now_iso(), time.perf_counter()

    def report_of(entries: list[dict], context: dict, log: str | None) -> dict:
        ctx = run_context(options, [spec] * size, dataset, context, log, start_iso, start)
        ctx.benchmark["controller"] = controller
        return build_report(entries, ctx)

    def timed_out() -> None:
        message = f"rank {rank}: no training step finished for {options.rank_timeout:g} s (a rank died or hangs)"
        stream.write(f"hepbench: error: {message}\n")
        if rank == 0:
            write_report(report_of(_unreported(spec, size, failed_entry(spec, message)), {}, message),
                         Path(options.results_dir))

    if rank == 0:
        # Written now, replaced at the end: a job killed outright (a launcher's SIGKILL after its
        # short grace, the scheduler, the OOM killer) still leaves a report that says it failed.
        write_report(report_of(_unreported(spec, size, failed_entry(spec, "did not report")), {}, _UNFINISHED),
                     Path(options.results_dir))
    watchdog = Watchdog(options.rank_timeout, timed_out).start()
    entry, context, gathered, exit_code = failed_entry(spec, "did not start"), {}, None, 1
    with interruptible():
        try:
            entry, context = run_copy(spec, stream, heartbeat=watchdog.beat)
            if "signal" in context:
                exit_code = 128 + context["signal"]
            else:
                watchdog.beat()
                gathered = hvd.allgather_object((entry, context))
        except Interrupted as e:  # while gathering: the launcher is ending the job
            exit_code, entry["status"] = e.exit_code, "failed"
            if entry["log"] == "ok":
                entry["log"] = str(e)
        except Exception as e:  # noqa: BLE001 - Horovod's error when another rank is gone
            entry["status"], entry["log"] = "failed", f"gathering the ranks' results failed: {e}"
        finally:
            watchdog.stop()
        if gathered is None:  # another rank is gone, or this one was stopped: report what is known
            path = None
            if rank == 0:
                log = f"rank 0: {entry['log']}"
                path = write_report(report_of(_unreported(spec, size, entry), context, log), Path(options.results_dir))
            return None, exit_code, path
    entries = [e for e, _ in gathered]
    if rank != 0:
        return None, 0 if all(e["status"] == "ok" for e in entries) else 1, None
    report = report_of(entries, gathered[0][1], None)
    path = write_report(report, Path(options.results_dir))
    if not options.quiet:
        stream.write(f"report: {path}\n")
    return report, 0 if report["report"]["status"] == "ok" else 1, path
