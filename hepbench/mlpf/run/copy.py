"""One benchmark copy: its specification (CopySpec) → an engine → the training loop → its report entry.

A copy is its own process (`python -m hepbench.mlpf.run.worker SPEC RESULT`): its backend, CPU
set, threads and GPU are fixed before its framework starts, and copies share nothing. `run_copy` is
the library entry point; it returns the copy's entry of the report and the context the report
needs. The loop itself is hepbench.mlpf.train.loop; single, mirrored, Horovod and DDP copies, on
any backend, differ only in the engine (hepbench.mlpf.engines.backends.make_engine).
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TextIO

from hepbench.core.energy import EnergyMeter, gpu_sources, powercap_sources
from hepbench.core.errors import HepbenchError
from hepbench.core.hostinfo import cpu_model
from hepbench.core.progress import Progress
from hepbench.core.stats import stats
from hepbench.mlpf.config import config_from_dict
from hepbench.mlpf.engines.backends import BACKENDS, DEFAULT_BACKEND, backend, make_engine, select_backend
from hepbench.mlpf.engines.base import MissingDevices
from hepbench.mlpf.run.signals import Interrupted
from hepbench.mlpf.train.throughput import Plan, TrainingTimer, Window, totals
from hepbench.mlpf.train.utilisation import copy_peak, utilisation


@dataclass(frozen=True)
class CopySpec:
    """Everything a copy process needs; written as JSON by the coordinating process."""

    copy: int
    copies: int
    config: dict  # hepbench.mlpf.config.config_to_dict
    data_dir: str
    device: str  # "cpu" or "gpu"
    gpu_index: int | None  # physical index, made visible to the copy as its only GPU
    cpus: list[int] | None  # CPU set to pin to (None: leave as inherited)
    threads: int  # the framework's intra-op (and inter-op) threads
    events_per_window: int
    validation_events: int
    quiet: bool = False
    bar: bool = False  # a progress bar (only one copy may draw on a terminal)
    strategy: str = "single"  # "single", "mirrored" (several devices), "horovod" or "ddp" (one rank)
    local_rank: int | None = None  # Horovod, DDP: rank on this host, which picks the GPU
    num_workers: int = 1  # data shards: a rank reads shard `copy` of `num_workers`
    replicas: int = 1  # mirrored: devices trained on at once (logical CPU devices on a CPU)
    gpu_indices: list[int] | None = None  # mirrored on GPUs: the physical indices made visible
    backend: str = DEFAULT_BACKEND  # the Keras backend: tensorflow, jax or torch
    gpu_vendor: str | None = None  # a GPU copy's: hepbench.core.devices' vendor name (its energy source)

    @classmethod
    def from_dict(cls, data: dict) -> CopySpec:
        return cls(**data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# A copy is one rank of a job (its entry names the rank): the backends' launcher strategies.
RANK_STRATEGIES = tuple(b.rank_strategy for b in map(backend, BACKENDS) if b.rank_strategy)


def failed_entry(spec: CopySpec, log: str) -> dict:
    """A copy's report entry before (or instead of) any result: status failed, nothing measured."""
    extra: dict = {}
    if spec.strategy in RANK_STRATEGIES:
        extra = {"rank": spec.copy, "local_rank": spec.local_rank}
    elif spec.strategy == "mirrored":
        extra = {"replicas": spec.replicas}
    return {
        "copy": spec.copy,
        "host": socket.gethostname(),
        **extra,
        "status": "failed",
        "log": log,
        "device": {
            "type": spec.device,
            "name": cpu_model() if spec.device == "cpu" else "GPU",
            "index": spec.gpu_index,
        },
        "cpus": spec.cpus,
        "threads": spec.threads,
        "compile_seconds": None,
        "warmup": None,
        "train": None,
        "windows": [],
        "window_stats": None,
        "validation": None,
        "peak_host_memory_bytes": None,
        "peak_device_memory_bytes": None,
        "wall_seconds": None,
        "energy_sources": [],
        "ceiling": None,
    }


def _say(spec: CopySpec, text: str, stream: TextIO) -> None:
    if not spec.quiet:
        unit = "rank" if spec.strategy in RANK_STRATEGIES else "copy"
        prefix = f"[{unit} {spec.copy}] " if spec.copies > 1 else ""
        stream.write(f"{prefix}{text}\n")
        stream.flush()


def _progress_bar(spec: CopySpec, plan: Plan, stream: TextIO):
    """on_step for the loop: a bar per window when this copy draws one, else None."""
    if not spec.bar or spec.quiet:
        return None
    bar: Progress | None = None

    def on_step(window: Window, done: int) -> None:
        nonlocal bar
        if done == 1:
            bar = Progress(plan.steps_per_window, f"window {window.window}/{plan.windows}", "steps", stream)
        bar.update(done, f"loss {window.loss:.4g}")

    return on_step


def reads_powercap(spec: CopySpec) -> bool:
    """Whether this copy reads the CPU packages' counters: one process per node does, since every
    copy on a node shares its packages (copy 0 of `hepbench run`, local rank 0 of a job)."""
    return spec.local_rank == 0 if spec.strategy in RANK_STRATEGIES else spec.copy == 0


def energy_meter(spec: CopySpec, powercap_dir: str) -> EnergyMeter:
    """This copy's counters: the node's packages where it reads them, and the GPUs it trains on."""
    sources = powercap_sources(powercap_dir) if reads_powercap(spec) else []
    if spec.device == "gpu":
        sources += gpu_sources(spec.gpu_indices or [spec.gpu_index], vendor=spec.gpu_vendor)
    host = socket.gethostname()
    for s in sources:
        s.host = host
    return EnergyMeter(sources)


def run_copy(spec: CopySpec, stream: TextIO = sys.stderr, heartbeat=lambda: None) -> tuple[dict, dict]:
    """Run one copy; returns (its report entry, context: the framework's build, backend and model facts).

    Never raises for a failed run: the entry's status says "failed" and its log why. After a
    SIGTERM/SIGINT (inside `signals.interruptible`) context["signal"] holds the signal number.
    `heartbeat()` is called after tracing and after every step (a watchdog's sign of life).
    """
    cfg = config_from_dict(spec.config, "copy specification")
    start = time.perf_counter()
    entry = failed_entry(spec, "did not start")
    context: dict = {}
    global_batch = cfg.data.batch_size * spec.replicas  # mirrored: batch_size events per replica
    plan = Plan(cfg.bench.warmup_steps, cfg.bench.windows, math.ceil(spec.events_per_window / global_batch))
    timer = TrainingTimer(plan)
    measured, engine, meter = None, None, None
    try:
        if spec.cpus:
            os.sched_setaffinity(0, spec.cpus)
        if cfg.bench.energy:  # read at the windows' boundaries only, outside their clocks
            meter = energy_meter(spec, cfg.bench.powercap_dir)
            timer.before_window, timer.after_window = meter.start, meter.stop
        # Keras reads its backend once, when first imported: before anything below imports it.
        select_backend(spec.backend)
        # Here, not at the top: the coordinating process imports this module (CopySpec, failed_entry)
        # and must not start a framework.
        from hepbench.mlpf.train.loop import DataSource, Hooks, Measurement, benchmark

        measured = Measurement(timer)
        engine = make_engine(  # a Horovod rank's threads and GPU: run.horovod, before hvd.init's first op
            spec.backend,
            kind=spec.strategy,
            device=spec.device,
            threads=None if spec.strategy == "horovod" else spec.threads,
            replicas=spec.replicas,
        )
        hooks = Hooks(
            say=lambda text: _say(spec, text, stream), heartbeat=heartbeat, on_step=_progress_bar(spec, plan, stream)
        )
        source = DataSource(spec.data_dir, num_workers=spec.num_workers, worker_index=spec.copy % spec.num_workers)
        # Copy 0 (rank 0) checks the arithmetic before the clock; the job's other ranks follow its verdict.
        benchmark(engine, cfg, source, measured, spec.validation_events, hooks, check_numerics=spec.copy == 0)
        entry["status"], entry["log"] = "ok", "ok"
    except Interrupted as e:
        context["signal"], entry["log"] = e.signum, str(e)
    except MissingDevices as e:
        entry["log"] = f"copy {spec.copy}: {e} (GPU index {spec.gpu_indices or spec.gpu_index})"
    except HepbenchError as e:
        entry["log"] = str(e)
    except Exception as e:  # a bug or a framework failure: the report still says what happened
        traceback.print_exc(file=stream)
        entry["log"] = f"{type(e).__name__}: {e}"
    if measured is not None:
        _record(spec, measured, entry, context)
        if measured.software is not None:  # the engine is configured: it can say how it runs
            try:
                context["backend"] = engine.backend()
            except Exception:  # noqa: BLE001 - the entry must still be returned; the report falls back
                traceback.print_exc(file=stream)  # to the package versions (run.collect)
    entry["warmup"] = _warmup(timer, measured)
    entry["windows"] = [w.to_dict() for w in timer.windows]
    entry["energy_sources"] = meter.to_list() if meter is not None else []
    if entry["status"] == "ok":
        entry["train"] = totals(timer.windows)
        entry["window_stats"] = stats(w.events_per_second for w in timer.windows)
    # This copy's share of its devices' peak (its ceiling on a CPU); the run's is report.throughput's.
    entry["model_flops_utilisation"] = utilisation(
        (entry["train"] or {}).get("flops_per_second"),
        copy_peak(entry, cfg.train.precision, cfg.train.fp32_matmul),
        failed="no FLOP/s achieved (the copy failed)",
    ).to_dict()
    # ru_maxrss is the kernel's exact high-water mark (KiB on Linux); sampling would miss peaks.
    entry["peak_host_memory_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    entry["peak_device_memory_bytes"] = engine.peak_device_memory() if engine is not None else None
    entry["wall_seconds"] = time.perf_counter() - start
    return entry, context


def _warmup(timer: TrainingTimer, measured) -> dict | None:
    """The entry's warm-up: the untimed steps and the batch shapes [events, padded length] run once
    before the clock started (every shape of the windows); None before either happened."""
    shapes = measured.warmed_shapes if measured is not None else None
    if not timer.warmup.steps and shapes is None:
        return None
    out = timer.warmup.to_dict()
    if shapes is not None:
        out["shapes"] = [[events, length] for events, length in shapes]
    return out


def _record(spec: CopySpec, measured, entry: dict, context: dict) -> None:
    """What the loop found out, into the entry and context (as far as it got)."""
    if measured.devices:
        indices = (spec.gpu_indices or [spec.gpu_index]) if spec.device == "gpu" else [None] * spec.replicas
        devices = [{"type": d["type"], "name": d["name"], "index": i} for d, i in zip(measured.devices, indices)]
        entry["device"] = devices[0]
        if spec.strategy == "mirrored":
            entry["replica_devices"] = devices
    if measured.software is not None:
        context["software"] = measured.software
    if measured.parameters is not None:
        trainable, frozen = measured.parameters
        context["model"] = {"name": "PFNetDense", "trainable_parameters": trainable, "non_trainable_parameters": frozen}
    if measured.compile_seconds is not None:
        entry["compile_seconds"] = measured.compile_seconds
    if measured.ceiling is not None:
        entry["ceiling"] = measured.ceiling.to_dict()
    if measured.validation is not None:
        entry["validation"] = measured.validation
    if measured.numerics is not None:  # copy 0's: the report's numerics block
        context["numerics"] = measured.numerics.to_dict()
