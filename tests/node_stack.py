"""Accelerator nodes' own software stacks, each a cached venv on this CPU machine with its Python,
NumPy, jax and torch installed first, as a node has them, and no TensorFlow (STACKS):

- NODE: the GPU machine that benchmarks/gpu_check.sh targets: Python 3.12, NumPy 2.5.2, jax 0.11.2,
  torch 2.11.0;
- NEWEST: Python 3.13 with the newest NumPy, jax and torch that PyPI served when the pins were last
  raised (7 December 2026: NumPy 2.5.5, jax 0.12.1, torch 2.15.0). Raise them by editing NEWEST.

torch is PyPI's CUDA build with its CUDA libraries (it does not import without them, GPU or not):
about 5 GB and 2 to 4 minutes the first time, kept under ~/.cache/hepbench/node-stack, keyed by the
stack. Keras comes with hepbench's wheels (`Stack.wheels`: gpu_check_wheels.sh's newest Keras 3).
tests/test_install.py installs hepbench into each (dry run); tests/benchmarks/test_gpu_check.py runs
the GPU check on each, and tests/test_node_stack.py the parity and DDP checks, with hepbench and the
wheels of gpu_check_wheels.sh (cached under ~/.cache/hepbench/gpu-check) installed as the check
installs them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.caches import CACHES

ROOT = Path(__file__).resolve().parents[1]
CACHE = CACHES / "node-stack"
WHEELS_CACHE = CACHE.parent / "gpu-check"
WHEELS_SCRIPT = ROOT / "benchmarks" / "gpu_check_wheels.sh"


def find_python(version: str) -> Path:
    """An interpreter of `version` (pyenv's, or one on PATH that runs); fails, naming where it looked."""
    candidates = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python"), reverse=True)
    if shutil.which(f"python{version}"):
        candidates.append(Path(shutil.which(f"python{version}")))  # (a pyenv shim may name no installed version)
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    pytest.fail(f"no Python {version}: neither ~/.pyenv/versions/{version}.* nor a python{version} on PATH that runs")


@contextmanager
def _only_one(path: Path):
    """One process at a time in here, for `path` (test modules on other xdist workers want the same
    cached folder: the first makes it, the others wait and find it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def cached(name: str, make) -> Path:
    """WHEELS_CACHE/name, made by make(folder) into a scratch folder first, so a failed make leaves nothing."""
    final = WHEELS_CACHE / name
    with _only_one(final):
        if not final.is_dir():
            scratch = WHEELS_CACHE / f"{name}.partial"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            make(scratch)
            scratch.rename(final)
    return final


def wheels(python_version: str) -> Path:
    """gpu_check_wheels.sh's folder for that Python: hepbench's dependencies less what the frameworks
    provide (cached, keyed by pyproject's dependencies and the script)."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    made_from = key(json.dumps(dependencies), WHEELS_SCRIPT.read_text())

    def make(folder: Path):
        r = subprocess.run(
            [WHEELS_SCRIPT, "--python-version", python_version, "--dest", folder],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    return cached(f"wheels-cp{python_version.replace('.', '')}-{made_from}", make)


@dataclass(frozen=True)
class Stack:
    """A node's stack: its Python and the versions of the packages it has before hepbench comes."""

    name: str
    python_version: str
    packages: dict[str, str]  # distribution: version (torch's local label, +cu130, left out)

    def python(self) -> Path:
        """The stack's interpreter, the venv made first if it is not cached yet."""
        pins = [f"{name}=={version}" for name, version in self.packages.items()]
        final = CACHE / f"py{self.python_version}-{key(' '.join(pins))}"
        with _only_one(final):
            if not (final / "complete").is_file():
                self._make_venv(final, pins)
        return final / "venv" / "bin" / "python"

    def _make_venv(self, final: Path, pins: list[str]) -> None:
        shutil.rmtree(final, ignore_errors=True)  # a venv cannot move: built in place, marked when whole
        r = subprocess.run(
            [find_python(self.python_version), "-m", "venv", final / "venv"], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        # No pip configuration: this machine's caps a torch release (torch<=2.14.1) that a node may be
        # past; the stack is exactly its pins, from PyPI.
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
        r = subprocess.run(
            [
                final / "venv" / "bin" / "python",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *pins,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            env=env,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        (final / "complete").touch()

    def wheels(self) -> Path:
        return wheels(self.python_version)

    def install_site(self, python: Path, site: Path) -> dict:
        """hepbench (this checkout) and the stack's wheels into `site` as gpu_check.sh installs them
        (offline, no dependencies resolved, the stack's own packages kept); the environment that runs
        `python` with them."""
        folder = self.wheels()
        r = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "-qq",
                "--no-index",
                "--find-links",
                folder,
                "--no-deps",
                "--no-cache-dir",
                "--no-compile",
                "--disable-pip-version-check",
                "--target",
                site,
                *sorted(folder.glob("*.whl")),
                ROOT,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return {**os.environ, "PYTHONPATH": f"{site}:{ROOT}", "TF_CPP_MIN_LOG_LEVEL": "2"}


NODE = Stack("node", "3.12", {"numpy": "2.5.2", "jax": "0.11.2", "jaxlib": "0.11.2", "torch": "2.11.0"})
NEWEST = Stack("newest", "3.13", {"numpy": "2.5.5", "jax": "0.12.1", "jaxlib": "0.12.1", "torch": "2.15.0"})
STACKS = (NODE, NEWEST)
