"""The three backends and how a process picks one, without importing any framework.

Keras 3 reads KERAS_BACKEND once, when it is first imported, so a copy or rank process selects
its backend (`select_backend`) before anything imports keras; `make_engine` then imports the
engine module of that backend only. The coordinating process checks that a backend is installed
(`require_backend`) with importlib's finder, which imports nothing.

Each backend has its own data-parallel engine (STRATEGIES): TensorFlow MirroredStrategy and
Horovod, JAX keras.distribution (`mirrored`: one process over the local devices), PyTorch DDP.
"""
from __future__ import annotations

import importlib.util
import os
import sys

from hepbench.core.errors import MissingExtra, UsageError

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"  # the reference engine
BACKEND_ENV = "KERAS_BACKEND"

# Engine kinds of each backend; "single" is one process on one device.
STRATEGIES = {
    "tensorflow": ("single", "mirrored", "horovod"),
    "jax": ("single", "mirrored"),
    "torch": ("single", "ddp"),
}
# What must be importable, and the extra that installs it.
_MODULES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
_EXTRAS = {"tensorflow": "cpu", "jax": "jax", "torch": "torch"}


def resolve_backend(requested: str | None) -> str:
    """--backend, else $KERAS_BACKEND, else tensorflow; a UsageError for any other name."""
    name = requested or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if name not in BACKENDS:
        source = "--backend" if requested else f"${BACKEND_ENV}"
        raise UsageError(f"{source}: the backend must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def require_backend(name: str) -> None:
    """MissingExtra naming the extra to install when the backend's framework is not installed."""
    for module in _MODULES[name]:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(f"--backend {name} needs {module}, which is not installed: "
                               f"pip install 'hepbench[{_EXTRAS[name]}]'")


def check_strategy(backend: str, kind: str) -> None:
    if kind not in STRATEGIES[backend]:
        raise UsageError(f"--strategy {kind} is not available with --backend {backend} "
                         f"(it has {', '.join(STRATEGIES[backend])})")


def select_backend(name: str) -> None:
    """Make Keras use `name` in this process; must run before keras is imported here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend before "
                           f"{name} was selected")
    os.environ[BACKEND_ENV] = name


def make_engine(backend: str, kind: str = "single", **options):
    """The engine of `backend` (after select_backend); options as the engine class takes them
    (device, threads, replicas, ...)."""
    check_strategy(backend, kind)
    select_backend(backend)
    if backend == "tensorflow":
        from hepbench.mlpf.engines.tensorflow import TensorFlowEngine as engine_class
    elif backend == "jax":
        from hepbench.mlpf.engines.jax import JaxEngine as engine_class
    else:
        from hepbench.mlpf.engines.torch import TorchEngine as engine_class
    return engine_class(kind=kind, **options)
