"""`hepbench run`: check everything, start one process per copy, collect, write the report.

The coordinating process never imports TensorFlow: it checks options, data set and results
directory before any work starts (bad input leaves nothing behind), splits the CPUs (or GPUs)
between the copies, starts them, stops all of them when one fails or a SIGTERM/SIGINT arrives,
and writes a validated report, also for a failed run.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from hepbench.mlpf.config import Config, config_to_dict
from hepbench.mlpf.data.built import describe_built
from hepbench.core.errors import UsageError
from hepbench.mlpf.model.flops import training_flops
from hepbench.core.hostinfo import command_line, host_info, nvidia_gpus, software_versions, usable_cpus
from hepbench.mlpf.report.summary import RunContext, build_report, write_report
from hepbench.mlpf.run.copy import CopySpec, failed_entry
from hepbench.mlpf.run.signals import Interrupted, interruptible

DEVICES = ("auto", "cpu", "gpu")
STRATEGIES = ("auto", "single", "mirrored", "horovod")
_STOP_GRACE_SECONDS = 60  # a copy finishes its current step, then writes its result


@dataclass(frozen=True)
class RunOptions:
    config: Config
    data_dir: Path
    results_dir: Path
    device: str = "auto"
    copies: int = 1
    threads: int | None = None  # per copy; default: the copy's CPU set
    events: int | None = None  # training events per copy and window; default: bench.{cpu,gpu}_events_per_window
    ncores: int | None = None  # use only the first N CPUs this process may use (HEPscore's --ncores)
    mllog: Path | None = None
    keep_work: bool = False  # keep the copies' spec/result files in <results>/mlpf-work (--mop none)
    strategy: str = "auto"  # single, mirrored, horovod; auto: horovod when launched as a rank
    replicas: int | None = None  # mirrored: devices (default: every visible GPU, or 1 CPU device)
    rank_timeout: float = 120.0  # horovod: seconds without a finished step before a rank gives up
    quiet: bool = False
    extra_arguments: str = ""
    command: tuple[str, ...] = ()


def check_writable_dir(directory: Path, what: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise UsageError(f"{what} {directory} is not writable: {e.strerror or e}") from None


def _visible_gpus() -> list[str]:
    """CUDA indices of the GPUs TensorFlow can use here ([] without an NVIDIA driver)."""
    if not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia")):
        return []  # no driver: TensorFlow cannot see a GPU, no need to ask it (seconds saved)
    probe = "import json, tensorflow as tf; print(json.dumps(len(tf.config.list_physical_devices('GPU'))))"
    env = {**os.environ, "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
        count = int(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    indices = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(count)]
    return indices[:count]


def resolve_strategy(requested: str) -> str:
    from hepbench.mlpf.run.horovod import launched_as_rank

    if requested not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {requested!r}")
    if requested == "auto":
        return "horovod" if launched_as_rank() else "single"
    return requested


def resolve_device(requested: str, gpus: list[str]) -> str:
    if requested not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "gpu" and not gpus:
        raise UsageError("--device gpu: TensorFlow sees no GPU on this machine (use --device cpu or auto)")
    if requested == "auto":
        return "gpu" if gpus else "cpu"
    return requested


def split_cpus(cpus: list[int], copies: int) -> list[list[int]]:
    """Disjoint, contiguous CPU sets, as equal as possible (the first ones get the remainder)."""
    if copies > len(cpus):
        raise UsageError(f"--copies {copies} needs at least {copies} CPUs; this process may use {len(cpus)}")
    size, extra = divmod(len(cpus), copies)
    sets, start = [], 0
    for i in range(copies):
        end = start + size + (1 if i < extra else 0)
        sets.append(cpus[start:end])
        start = end
    return sets


def plan_mirrored(options: RunOptions, device: str, gpus: list[str], cpus: list[int]) -> CopySpec:
    """One process training on several devices: the GPUs, or logical devices of its CPU set."""
    if options.copies != 1:
        raise UsageError("--strategy mirrored is one process over several devices: use --replicas, not --copies")
    replicas = options.replicas or (len(gpus) if device == "gpu" else 1)
    if device == "gpu" and replicas > len(gpus):
        raise UsageError(f"--replicas {replicas} needs {replicas} GPUs; {len(gpus)} visible")
    if device == "cpu" and replicas > len(cpus):
        raise UsageError(f"--replicas {replicas} needs at least {replicas} CPUs; this process may use {len(cpus)}")
    (spec,) = plan_copies(options, device, gpus[:1], cpus)
    indices = [int(g) if g.isdigit() else i for i, g in enumerate(gpus[:replicas])] if device == "gpu" else None
    bench = options.config.bench
    per_device = bench.gpu_events_per_window if device == "gpu" else bench.cpu_events_per_window
    return dataclasses.replace(spec, strategy="mirrored", replicas=replicas, gpu_indices=indices,
                               events_per_window=options.events or per_device * replicas)


def plan_copies(options: RunOptions, device: str, gpus: list[str], cpus: list[int]) -> list[CopySpec]:
    cfg = options.config
    if device == "gpu" and options.copies > len(gpus):
        raise UsageError(f"--copies {options.copies} needs {options.copies} GPUs (one per copy); {len(gpus)} visible")
    bench = cfg.bench
    events = options.events or (bench.gpu_events_per_window if device == "gpu" else bench.cpu_events_per_window)
    validation = bench.gpu_validation_events if device == "gpu" else bench.cpu_validation_events
    specs = []
    for i, cpu_set in enumerate(split_cpus(cpus, options.copies)):
        gpu = gpus[i] if device == "gpu" else None
        specs.append(CopySpec(
            copy=i, copies=options.copies, config=config_to_dict(cfg), data_dir=str(options.data_dir),
            device=device, gpu_index=int(gpu) if gpu is not None and gpu.isdigit() else (i if gpu else None),
            cpus=cpu_set, threads=options.threads or len(cpu_set), events_per_window=events,
            validation_events=validation, quiet=options.quiet,
            bar=(i == 0 and options.copies == 1 and sys.stderr.isatty()),
        ))
    return specs


def check_options(options: RunOptions, dataset: dict) -> None:
    cfg = options.config
    if cfg.train.jit_compile and not cfg.data.pad_to_max:
        raise UsageError("train.jit_compile=true needs data.pad_to_max=true: XLA compiles once per padded "
                         "length, and those compilations would land inside the timed windows")
    if cfg.train.jit_compile and cfg.bench.warmup_steps < 1:
        raise UsageError("train.jit_compile=true needs bench.warmup_steps >= 1 (XLA compiles on the first step)")
    if dataset["train_events"] < 1:
        raise UsageError(f"{options.data_dir}: the data set has no training events")
    validation = max(cfg.bench.cpu_validation_events, cfg.bench.gpu_validation_events)
    if validation and dataset["test_events"] < 1:
        raise UsageError(f"{options.data_dir}: the data set has no test events for validation "
                         "(set bench.cpu_validation_events=0 and bench.gpu_validation_events=0 to skip it)")


def _child_env(spec: CopySpec, gpus_present: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(spec.threads), "PYTHONUNBUFFERED": "1",
           "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if spec.device == "gpu":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, spec.gpu_indices or [spec.gpu_index]))
    elif gpus_present:
        env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run must not touch (or allocate on) a GPU
    return env


def _start(specs: list[CopySpec], workdir: Path, gpus_present: bool) -> list[subprocess.Popen]:
    procs = []
    for spec in specs:
        spec_path = workdir / f"copy{spec.copy}.spec.json"
        spec_path.write_text(json.dumps(spec.to_dict()))
        cmd = [sys.executable, "-m", "hepbench.mlpf.run.worker", str(spec_path), str(workdir / f"copy{spec.copy}.result.json")]
        procs.append(subprocess.Popen(cmd, env=_child_env(spec, gpus_present)))
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


def _collect(specs: list[CopySpec], procs: list[subprocess.Popen], workdir: Path,
             stopped: dict[int, str]) -> tuple[list[dict], dict]:
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


def run_context(options: RunOptions, specs: list[CopySpec], dataset: dict, context: dict, log: str | None,
                 start_iso: str, start: float) -> RunContext:
    """Everything the report holds besides the copies' entries."""
    cfg, first = options.config, specs[0]
    software = software_versions()
    software.update({k: v for k, v in context.get("software", {}).items() if v is not None})
    model = {"name": "PFNetDense", "trainable_parameters": None, "non_trainable_parameters": None,
             **context.get("model", {}),
             "training_flops_per_event_at_max": training_flops(cfg.model, cfg.data.max_elements)}
    return RunContext(
        benchmark={"device": first.device, "strategy": first.strategy, "copies": len(specs), "threads_per_copy": first.threads,
                   "windows": cfg.bench.windows, "events_per_window": first.events_per_window,
                   "warmup_steps": cfg.bench.warmup_steps, "validation_events": first.validation_events,
                   "data_dir": str(options.data_dir)},
        config=config_to_dict(cfg), dataset=dataset, model=model, software=software,
        host=host_info(nvidia_gpus() if first.device == "gpu" else []),
        timing={"start": start_iso, "end": now_iso(), "wall_seconds": time.perf_counter() - start},
        command=list(options.command or command_line()), extra_arguments=options.extra_arguments, log=log,
    )


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def run_benchmark(options: RunOptions, stream: TextIO = sys.stderr) -> tuple[dict, int, Path]:
    """Run the benchmark; returns (report, exit code, path of the written summary).

    With the horovod strategy this process is one rank: the report and path are None on ranks > 0.
    """
    strategy = resolve_strategy(options.strategy)
    if strategy == "horovod":
        from hepbench.mlpf.run.horovod import run_horovod

        return run_horovod(options, stream)
    if options.replicas is not None and strategy != "mirrored":
        raise UsageError("--replicas belongs to --strategy mirrored")
    if options.copies < 1:
        raise UsageError(f"--copies must be at least 1, not {options.copies}")
    # Everything that can be wrong with the input fails here, before any file is written.
    dataset = describe_built(options.data_dir)
    check_options(options, dataset)
    gpus = _visible_gpus() if options.device != "cpu" else []
    device = resolve_device(options.device, gpus)
    cpus = usable_cpus()
    if options.ncores is not None:
        if not 1 <= options.ncores <= len(cpus):
            raise UsageError(f"--ncores {options.ncores}: this process may use {len(cpus)} CPUs")
        cpus = cpus[: options.ncores]
    specs = [plan_mirrored(options, device, gpus, cpus)] if strategy == "mirrored" else plan_copies(options, device, gpus, cpus)
    check_writable_dir(Path(options.results_dir), "results directory")
    if options.mllog is not None:
        check_writable_dir(Path(options.mllog).resolve().parent, "--mllog directory")
    cfg = options.config

    if not options.quiet:
        s = specs[0]
        on = f"{s.replicas} {device} replicas (mirrored)" if strategy == "mirrored" else device
        stream.write(
            f"mlpf-bmk: {len(specs)} cop{'y' if len(specs) == 1 else 'ies'} on {on}, {s.threads} thread(s) each; "
            f"{cfg.bench.windows} windows of {s.events_per_window} events after {cfg.bench.warmup_steps} warm-up "
            f"step(s); {dataset['name']} {dataset['version']} ({'synthetic' if dataset['synthetic'] else 'published'}, "
            f"{dataset['train_events']} train events)\n")
    start_iso, start = now_iso(), time.perf_counter()
    log, exit_code = None, 0
    workdir = Path(tempfile.mkdtemp(prefix="hepbench-run-"))
    try:
        with interruptible():
            procs: list[subprocess.Popen] = []
            try:
                procs = _start(specs, workdir, bool(gpus))
                stopped = _supervise(procs)
            except Interrupted as e:
                log, exit_code = f"{e} after {time.perf_counter() - start:.0f} s", e.exit_code
                _stop(procs)
                stopped = {}
            entries, context = _collect(specs, procs, workdir, stopped)
            ctx = run_context(options, specs, dataset, context, log, start_iso, start)
            report = build_report(entries, ctx)
            path = write_report(report, Path(options.results_dir))
            if options.mllog is not None:
                from hepbench.mlpf.report.mllog import write_mllog

                write_mllog(report, Path(options.mllog))
    finally:
        if options.keep_work:
            shutil.copytree(workdir, Path(options.results_dir) / "mlpf-work", dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    if report["report"]["status"] != "ok" and exit_code == 0:
        exit_code = 1
    if not options.quiet:
        stream.write(f"report: {path}\n")
    return report, exit_code, path

