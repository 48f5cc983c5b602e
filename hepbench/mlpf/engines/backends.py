"""The three backends and how a process picks one, without importing any framework.

Keras 3 reads KERAS_BACKEND once, when it is first imported, so a copy or rank process selects
its backend (`select_backend`) before anything imports keras; `make_engine` then imports the
engine module of that backend only. The coordinating process checks that a backend is installed
(`require_backend`) with importlib's finder, which imports nothing.

Each backend is one `Backend` record: its modules and extra, its data-parallel engines (TensorFlow
MirroredStrategy and Horovod, JAX keras.distribution, `mirrored`: one process over the local
devices, PyTorch DDP), its GPU probe, its compiler and its engine class. Everything outside an
engine module reads a backend's facts from here, and compares no backend's name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass

from hepbench.core.errors import MissingExtra, UsageError


@dataclass(frozen=True)
class Backend:
    """One framework behind the engine seam: every fact about it that code outside its engine module
    needs (the run's planning, its reports, the CLI), none of which imports the framework. A new
    engine is one more Backend here, its engine module, and its parameter in the engine-contract test."""

    name: str  # --backend, $KERAS_BACKEND, report.backend.name
    label: str  # how messages name it
    modules: tuple[str, ...]  # what must be importable for it to run
    extra: str  # the pip extra that installs them
    distributions: tuple[str, ...]  # whose installed version is the framework's (the first one found)
    strategies: tuple[str, ...]  # its engine kinds: "single" (one process, one device) and its data-parallel ones
    rank_strategy: str | None  # the kind of a process that a launcher started as one rank of several
    gpu_probe: str  # Python that sets `n` to the GPUs (NVIDIA, AMD or Intel) the framework sees (in a subprocess)
    compiler: str  # what compiles its train step
    compile_option: str | None  # the train.* key that turns the compiler on (None: it always compiles)
    engine: str  # "module:Class" of its Engine
    engine_options: tuple[
        str, ...
    ] = ()  # what its engine takes beyond every engine's (kind, device, threads, replicas)
    version_file: str | None = None  # a module file that holds __version__ more exactly than the metadata
    companions: tuple[str, ...] = ()  # other packages whose versions report.backend names

    @property
    def compiles_with(self) -> str:
        """How it compiles its step, as messages say it."""
        if self.compile_option is None:
            return f"{self.compiler}, always (nothing to set)"
        return f"train.{self.compile_option}=true ({self.compiler})"


TENSORFLOW = Backend(
    name="tensorflow",
    label="TensorFlow",
    modules=("tensorflow",),
    extra="cpu",
    distributions=("tensorflow", "tensorflow-cpu"),
    strategies=("single", "mirrored", "horovod"),
    rank_strategy="horovod",
    gpu_probe="import tensorflow as tf; n = len(tf.config.list_physical_devices('GPU'))",
    compiler="XLA",
    compile_option="jit_compile",
    engine="hepbench.mlpf.engines.tensorflow:TensorFlowEngine",
    engine_options=("graph_optimizer",),
)
JAX = Backend(
    name="jax",
    label="JAX",
    modules=("jax", "jaxlib"),
    extra="jax",
    distributions=("jax",),
    strategies=("single", "mirrored"),
    rank_strategy=None,
    # jax.devices raises RuntimeError when no GPU platform (plugin, driver) is there.
    gpu_probe="import jax\ntry:\n    n = len(jax.devices('gpu'))\nexcept RuntimeError:\n    n = 0",
    compiler="jax.jit",
    compile_option=None,
    engine="hepbench.mlpf.engines.jax:JaxEngine",
    companions=("jaxlib",),
)
TORCH = Backend(
    name="torch",
    label="PyTorch",
    modules=("torch",),
    extra="torch",
    distributions=("torch",),
    strategies=("single", "ddp"),
    rank_strategy="ddp",
    # CUDA's API is also ROCm's (HIP); Intel GPUs are torch.xpu's.
    gpu_probe=(
        "import torch\nif torch.cuda.is_available():\n    n = torch.cuda.device_count()\n"
        "elif hasattr(torch, 'xpu') and torch.xpu.is_available():\n    n = torch.xpu.device_count()\n"
        "else:\n    n = 0"
    ),
    compiler="torch.compile",
    compile_option="compile",
    engine="hepbench.mlpf.engines.torch:TorchEngine",
    # PyPI's CUDA wheels give the build (2.13.0+cu130) in torch/version.py, not in their metadata.
    version_file="torch/version.py",
)

_BY_NAME = {b.name: b for b in (TENSORFLOW, JAX, TORCH)}
BACKENDS = tuple(_BY_NAME)
DEFAULT_BACKEND = TENSORFLOW.name  # the reference engine
BACKEND_ENV = "KERAS_BACKEND"


def backend(name: str) -> Backend:
    """The Backend called `name`; ValueError for any other name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r} (the backends: {', '.join(BACKENDS)})") from None


def resolve_backend(requested: str | None) -> str:
    """--backend, else $KERAS_BACKEND, else tensorflow; a UsageError for any other name."""
    name = requested or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if name not in BACKENDS:
        source = "--backend" if requested else f"${BACKEND_ENV}"
        raise UsageError(f"{source}: the backend must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def require_backend(name: str) -> None:
    """MissingExtra naming the extra to install when the backend's framework is not installed."""
    for module in backend(name).modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(
                f"--backend {name} needs {module}, which is not installed: "
                f"pip install 'hepbench[{backend(name).extra}]'"
            )


def check_strategy(name: str, kind: str) -> None:
    strategies = backend(name).strategies
    if kind not in strategies:
        raise UsageError(f"--strategy {kind} is not available with --backend {name} (it has {', '.join(strategies)})")


def select_backend(name: str) -> None:
    """Make Keras use `name` in this process; must run before keras is imported here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend before {name} was selected")
    os.environ[BACKEND_ENV] = name


def make_engine(name: str, kind: str = "single", **options):
    """The engine of backend `name` (after select_backend): its class imported from its module only;
    options as the engine class takes them (device, threads, replicas, ...)."""
    check_strategy(name, kind)
    select_backend(name)
    module, _, cls = backend(name).engine.partition(":")
    return getattr(importlib.import_module(module), cls)(kind=kind, **options)
