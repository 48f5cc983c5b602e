"""Where a run ran: host CPU/memory/GPUs, package versions, containment, code checksum, command line.

Nothing here imports TensorFlow: the coordinating process describes the machine (its GPUs as
hepbench.core.devices lists them) while the copies (which have TensorFlow loaded) report its
version and CUDA build themselves.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata, resources

import psutil


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (cgroup/taskset limits included)."""
    return sorted(os.sched_getaffinity(0))


def host_info(gpus: list[dict], gpu_runtime: dict | None = None) -> dict:
    """report.host: the machine, its GPUs (core.devices.Gpu.to_dict) and, only where there are GPUs,
    their runtime and driver (core.devices.Listing.host_runtime), so that a CPU run's block keeps its keys."""
    host = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count() or 1,
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cpus": len(usable_cpus()),
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "machine": platform.machine(),
        "gpus": gpus,
    }
    if gpu_runtime is not None:
        host["gpu_runtime"] = gpu_runtime
    return host


def distribution_version(*distributions: str) -> str | None:
    """The installed version of the first of `distributions` that is installed (None: none is)."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions(hepbench_version: str, names: Iterable[str]) -> dict:
    """hepbench's (as given) and Python's versions, then each distribution's in `names` (None: not installed)."""
    return {
        "hepbench": hepbench_version,
        "python": platform.python_version(),
        **{n: distribution_version(n) for n in names},
    }


def containment() -> str:
    """How the process is contained, as HEPscore reports it."""
    # Apptainer and Singularity set these inside the container even under --cleanenv.
    if os.environ.get("APPTAINER_CONTAINER"):
        return "apptainer"
    if os.environ.get("SINGULARITY_CONTAINER") or os.path.isdir("/.singularity.d"):
        return "singularity"
    # podman --read-only may leave out /run/.containerenv; its `container` variable stays.
    if os.path.exists("/run/.containerenv") or os.environ.get("container") == "podman":
        return "podman"
    if os.path.exists("/.dockerenv"):
        return "docker"
    return "none"


@functools.cache
def bmk_checksum() -> str:
    """sha256 over the package's own files (code, defaults, schemas): the report's bmk_checksum."""
    # The package's files by name: the top-level package is already imported, so nothing new is.
    root = resources.files("hepbench")
    digest = hashlib.sha256()
    files = []

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, name + "/")
            elif child.name.endswith((".py", ".yaml", ".json")):
                files.append((name, child))

    walk(root, "")
    for name, child in sorted(files, key=lambda item: item[0]):
        digest.update(f"{name}:{hashlib.sha256(child.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def command_line() -> list[str]:
    return [os.path.basename(sys.argv[0]) or "hepbench", *sys.argv[1:]]


# entrypoint.sh exports the --extra-args it passed on, for the report's run_info.extra_arguments.
EXTRA_ARGUMENTS_ENV = "HEPBENCH_EXTRA_ARGUMENTS"


def extra_arguments() -> str:
    """The options entrypoint.sh passed on from its --extra-args ("" when not started by it)."""
    return os.environ.get(EXTRA_ARGUMENTS_ENV, "")
