"""What a run will do, decided before anything starts: the options, the strategy and device, the
CPU sets, and each copy's (or this rank's) `CopySpec`. Shared by benchmark.py (copies on this
machine), horovod.py and ddp.py (one rank of a job); nothing here imports a framework (the GPU
probe runs in a subprocess) or writes a file.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from hepbench.core import devices
from hepbench.core.errors import UsageError
from hepbench.mlpf.config import Config, ConfigSource, TrainConfig, config_to_dict
from hepbench.mlpf.engines import backends
from hepbench.mlpf.engines.backends import DEFAULT_BACKEND, check_strategy
from hepbench.mlpf.run.copy import CopySpec

DEVICES = ("auto", "cpu", "gpu")
# --strategy: auto, then every backend's strategies, each once, in the records' order.
STRATEGIES = ("auto", *dict.fromkeys(s for name in backends.BACKENDS for s in backends.backend(name).strategies))

# Job sizes as launchers export them: mpirun (OpenMPI), PMI/PMI-2 (MPICH, srun --mpi=pmi2), srun
# itself (a job step's task count; the batch script's own step has 1 task, so it is not a rank)
# and torchrun (WORLD_SIZE).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS", "WORLD_SIZE")


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
    backend: str = DEFAULT_BACKEND  # tensorflow, jax or torch (engines.backends.resolve_backend)
    strategy: str = "auto"  # single, mirrored, horovod, ddp; auto: horovod/ddp when launched as a rank
    replicas: int | None = None  # mirrored: devices (default: every visible GPU, or 1 CPU device)
    rank_timeout: float = 120.0  # horovod, ddp: seconds without a finished step before a rank gives up
    quiet: bool = False
    extra_arguments: str = ""
    command: tuple[str, ...] = ()
    # Where `config` came from: a GPU run loads it again with defaults.yaml's `gpu:` defaults under
    # the same file and overrides (for_device). None: `config` is used as given on every device.
    config_source: ConfigSource | None = None

    def for_device(self, device: str) -> RunOptions:
        """These options for a run on `device` ("cpu" or "gpu"): on a GPU, the configuration its
        source gives with the GPU defaults."""
        if device != "gpu" or self.config_source is None:
            return self
        # The GPU defaults (batch size, precision, cache) are values check_options has no rule about.
        return dataclasses.replace(self, config=self.config_source.load(device))


@dataclass(frozen=True)
class Inputs:
    """What `validate` found: the data set and the hardware this run may use."""

    dataset: dict  # hepbench.mlpf.data.built.describe_built
    device: str  # "cpu" or "gpu"
    gpus: list[str] = field(default_factory=list)  # the GPUs' physical indices (core.devices.Vendor.visible)
    vendor: str | None = None  # their vendor (core.devices.VENDORS) when there are GPUs
    cpus: list[int] = field(default_factory=list)  # the CPUs this process may use (after --ncores)
    # Why the run stops before its copies start, with a failure report (a --device gpu that finds none).
    refusal: DeviceUnavailable | None = None


@dataclass(frozen=True)
class Plan:
    """What `execute` starts: the copies' specs (a Horovod rank: its own), and what the report says."""

    specs: list[CopySpec]
    dataset: dict
    copies: int  # copies (or ranks) in the report
    gpu_vendor: str | None = None  # the node's GPUs' vendor where it has GPUs: a CPU copy is kept off them
    benchmark: dict = field(default_factory=dict)  # more of the report's `benchmark` block (Horovod: controller)
    mllog: Path | None = None  # where `report` also writes :::MLLOG lines (copies on this machine only)
    refusal: DeviceUnavailable | None = None  # Inputs.refusal: the copies never start, the report says why


@dataclass
class Outcome:
    """What `execute` leaves for `collect` and `report`."""

    entries: list[dict]  # one report entry per copy or rank
    context: dict  # model, software... as the first copy measured them
    log: str | None  # why the run stopped early (None: it did not)
    exit_code: int  # before the report's status is taken into account
    start_iso: str
    start: float  # time.perf_counter() at the start
    publish: bool = True  # this process writes the report (not a Horovod rank > 0)
    complete: bool = True  # every copy reported (False: a Horovod job that lost a rank)


class Strategy(Protocol):
    """single/mirrored copies on this machine (benchmark.LocalCopies), a Horovod rank (horovod.HorovodRank),
    a PyTorch DDP rank (ddp.DdpRank)."""

    def validate(self, options: RunOptions) -> Inputs: ...

    def plan(self, options: RunOptions, inputs: Inputs) -> Plan: ...

    def execute(self, options: RunOptions, plan: Plan, stream: TextIO) -> Outcome: ...

    def finish(self) -> None:
        """After the report phase (rank 0 has written the report): leave the job."""


def launcher_size() -> int:
    """The number of processes the launcher says it started (1 if none says so)."""
    sizes = [os.environ.get(v, "") for v in _SIZE_VARIABLES]
    return max([int(s) for s in sizes if s.isdigit()] + [1])


def launched_as_rank() -> bool:
    """True when horovodrun, mpirun, srun or torchrun started this process as one of several ranks
    (torchrun: also a job of one rank, since it says so with TORCHELASTIC_RUN_ID)."""
    return (
        os.environ.get("HOROVOD_RANK") is not None
        or os.environ.get("TORCHELASTIC_RUN_ID") is not None
        or launcher_size() > 1
    )


def resolve_strategy(requested: str, backend: str = DEFAULT_BACKEND) -> str:
    """--strategy for `backend`; auto: the backend's data-parallel strategy (horovod, ddp) when a
    launcher started this process as a rank, else single. A UsageError where `backend` lacks it."""
    if requested not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {requested!r}")
    strategy = requested
    if requested == "auto":
        if not launched_as_rank():
            strategy = "single"
        elif backends.backend(backend).rank_strategy is not None:
            strategy = backends.backend(backend).rank_strategy
        else:
            raise UsageError(
                f"--backend {backend} runs one process over the local devices (--strategy mirrored), "
                f"not one rank of a {launcher_size()}-process job: start one process"
            )
    check_strategy(backend, strategy)
    return strategy


def visible_gpus(backend: str = DEFAULT_BACKEND, vendor: devices.Vendor | None = None) -> list[str]:
    """Physical indices of the GPUs `backend`'s framework can use here, as `vendor`'s visibility
    variables number them (default: the node's vendor; [] without any GPU driver)."""
    vendor = vendor or devices.node_vendor()
    if vendor is None:
        return []  # no driver: no framework can see a GPU, no need to ask one (seconds saved)
    # A subprocess (the coordinating process never imports a framework): the backend's probe.
    probe = f"{backends.backend(backend).gpu_probe}\nprint(n)"
    env = {
        **os.environ,
        **vendor.order,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    }  # JAX: counting devices must not claim their memory
    try:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
        count = int(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return []
    return vendor.visible(os.environ, count)


class DeviceUnavailable(UsageError):
    """--device gpu where the engine sees no GPU: a usage error that a strategy may keep as
    Inputs.refusal instead, so that the run writes a failure report (nothing timed) saying why."""


def resolve_device(requested: str, gpus: list[str], backend: str = DEFAULT_BACKEND) -> str:
    if requested not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "gpu" and not gpus:
        raise DeviceUnavailable(
            f"--device gpu: {backends.backend(backend).label} sees no GPU on this machine "
            "(no NVIDIA, AMD ROCm or Intel Level Zero driver or device visible; "
            "use --device cpu or auto)"
        )
    if requested == "auto":
        return "gpu" if gpus else "cpu"
    return requested


def select_cpus(cpus: list[int], ncores: int | None) -> list[int]:
    """The first `ncores` of the CPUs this process may use (all of them without --ncores)."""
    if ncores is None:
        return cpus
    if not 1 <= ncores <= len(cpus):
        raise UsageError(f"--ncores {ncores}: this process may use {len(cpus)} CPUs")
    return cpus[:ncores]


def check_options(options: RunOptions, dataset: dict) -> None:
    cfg = options.config
    mine = backends.backend(options.backend)
    for owner in map(backends.backend, backends.BACKENDS):
        if owner.compile_option and getattr(cfg.train, owner.compile_option) and owner is not mine:
            raise UsageError(
                f"train.{owner.compile_option}=true ({owner.compiler}) is for --backend {owner.name} "
                f"only; --backend {mine.name} compiles with {mine.compiles_with}"
            )
    if cfg.train.compile_backend != TrainConfig.compile_backend and not cfg.train.compile:
        raise UsageError(
            f"train.compile_backend={cfg.train.compile_backend} needs train.compile=true "
            "(without it the PyTorch step runs eagerly)"
        )
    if dataset["train_events"] < 1:
        raise UsageError(f"{options.data_dir}: the data set has no training events")
    validation = max(cfg.bench.cpu_validation_events, cfg.bench.gpu_validation_events)
    if validation and dataset["test_events"] < 1:
        raise UsageError(
            f"{options.data_dir}: the data set has no test events for validation "
            "(set bench.cpu_validation_events=0 and bench.gpu_validation_events=0 to skip it)"
        )


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


def plan_copies(
    options: RunOptions, device: str, gpus: list[str], cpus: list[int], refused: bool = False, vendor: str | None = None
) -> list[CopySpec]:
    """Independent copies: a disjoint CPU set each, and one GPU each on a GPU run (none assigned
    when `refused`: the copies of a run that stops before they start, for its failure report);
    `vendor`: the GPUs' (core.devices.VENDORS)."""
    if device == "gpu" and options.copies > len(gpus) and not refused:
        raise UsageError(f"--copies {options.copies} needs {options.copies} GPUs (one per copy); {len(gpus)} visible")
    per_device, validation = options.config.bench.for_device(device)
    specs = []
    for i, cpu_set in enumerate(split_cpus(cpus, options.copies)):
        gpu = gpus[i] if device == "gpu" and i < len(gpus) else None  # (none: a refused run)
        specs.append(
            CopySpec(
                copy=i,
                copies=options.copies,
                config=config_to_dict(options.config),
                data_dir=str(options.data_dir),
                device=device,
                gpu_index=int(gpu) if gpu is not None and gpu.isdigit() else (i if gpu else None),
                cpus=cpu_set,
                threads=options.threads or len(cpu_set),
                events_per_window=options.events or per_device,
                validation_events=validation,
                quiet=options.quiet,
                bar=(i == 0 and options.copies == 1 and sys.stderr.isatty()),
                backend=options.backend,
                gpu_vendor=vendor if device == "gpu" else None,
            )
        )
    return specs


def plan_mirrored(
    options: RunOptions, device: str, gpus: list[str], cpus: list[int], refused: bool = False, vendor: str | None = None
) -> CopySpec:
    """One process training on several devices: the GPUs, or logical devices of its CPU set (when
    `refused`, none assigned: see plan_copies)."""
    if options.copies != 1:
        raise UsageError("--strategy mirrored is one process over several devices: use --replicas, not --copies")
    # As engines.tensorflow_steps refuses (check_options, run first, keeps jit_compile to TensorFlow).
    if options.config.train.jit_compile:
        raise UsageError(
            "train.jit_compile=true is not supported with --strategy mirrored: its optimizer update is "
            "a cross-replica merge call, which XLA cannot compile (set train.jit_compile=false)"
        )
    replicas = options.replicas or (len(gpus) if device == "gpu" and not refused else 1)
    if device == "gpu" and replicas > len(gpus) and not refused:
        raise UsageError(f"--replicas {replicas} needs {replicas} GPUs; {len(gpus)} visible")
    if device == "cpu" and replicas > len(cpus):
        raise UsageError(f"--replicas {replicas} needs at least {replicas} CPUs; this process may use {len(cpus)}")
    (spec,) = plan_copies(options, device, gpus[:1], cpus, refused, vendor)
    indices = [int(g) if g.isdigit() else i for i, g in enumerate(gpus[:replicas])] if device == "gpu" else None
    per_device, _ = options.config.bench.for_device(device)
    return dataclasses.replace(
        spec,
        strategy="mirrored",
        replicas=replicas,
        gpu_indices=indices,
        events_per_window=options.events or per_device * replicas,
    )


def rank_spec(
    options: RunOptions,
    device: str,
    rank: int,
    size: int,
    local_rank: int,
    strategy: str = "horovod",
    vendor: str | None = None,
) -> CopySpec:
    """This rank of a Horovod or DDP job (`strategy`): shard `rank` of `size`, the GPU of its local
    rank (of `vendor`), the launcher's CPU binding."""
    per_device, validation = options.config.bench.for_device(device)
    return CopySpec(
        copy=rank,
        copies=size,
        config=config_to_dict(options.config),
        data_dir=str(options.data_dir),
        device=device,
        gpu_index=local_rank if device == "gpu" else None,
        cpus=None,  # the launcher's binding (mpirun --bind-to, srun --cpu-bind) stays as it is
        threads=options.threads or len(os.sched_getaffinity(0)),
        events_per_window=options.events or per_device,
        validation_events=validation,
        quiet=options.quiet,
        strategy=strategy,
        local_rank=local_rank,
        num_workers=size,
        backend=options.backend,
        gpu_vendor=vendor if device == "gpu" else None,
    )
