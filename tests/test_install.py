"""hepbench installs into an accelerator node's own stack without changing it (docs/installing.md).

Each node stack of tests/node_stack.py (the GPU machine's, which benchmarks/gpu_check.sh targets:
Python 3.12, NumPy 2.5.2, jax 0.11.2, torch 2.11.0; and the newest: Python 3.13 with the newest
NumPy, jax and torch), installed first. pip's dry run of hepbench with the JAX and PyTorch extras
must install hepbench and what it lacks, and none of the stack's packages; the same dry run with the
TensorFlow extra (the reference's pins, NumPy 2.0.x) would replace NumPy, which shows the check can
fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.node_stack import STACKS, Stack

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module", params=STACKS, ids=lambda s: s.name)
def stack(request) -> Stack:
    return request.param


@pytest.fixture(scope="module")
def node_python(stack) -> Path:
    return stack.python()


def pip_dry_run(python: Path, target: str, report: Path) -> subprocess.CompletedProcess:
    # Without this machine's pip configuration: its cap on torch (torch<=2.14.1) is not a node's.
    return subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--disable-pip-version-check",
            "--report",
            report,
            target,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )


def dry_run(python: Path, target: str, tmp_path: Path) -> dict[str, str]:
    """{package: version} that `pip install target` would install (pip's installation report)."""
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    r = pip_dry_run(python, target, report)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return {
        canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]
    }


def test_the_node_stack_is_what_the_node_has(stack, node_python):
    r = subprocess.run(
        [
            node_python,
            "-c",
            "import platform, numpy, jax, jaxlib, torch; print(platform.python_version(), "
            "numpy.__version__, jax.__version__, jaxlib.__version__, torch.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    python, numpy, jax, jaxlib, torch = r.stdout.split()
    assert python.startswith(f"{stack.python_version}.")
    assert [numpy, jax, jaxlib, torch.split("+")[0]] == [stack.packages[n] for n in ("numpy", "jax", "jaxlib", "torch")]


def test_installing_the_jax_and_torch_engines_keeps_the_nodes_numpy_jax_and_torch(stack, node_python, tmp_path):
    installed = dry_run(node_python, f"{ROOT}[jax,torch]", tmp_path)
    assert "hepbench" in installed and "keras" in installed  # what it lacks, it gets
    kept = set(stack.packages)
    assert not kept & set(installed), {k: installed[k] for k in kept & set(installed)}
    assert "tensorflow" not in installed and "tensorflow-cpu" not in installed


def test_the_tensorflow_extra_would_bring_the_references_numpy(stack, node_python, tmp_path):
    if tuple(map(int, stack.python_version.split("."))) >= (3, 13):
        # TensorFlow 2.18.1 has no wheel for Python 3.13: the reference's extra cannot install there.
        r = pip_dry_run(node_python, f"{ROOT}[cpu]", tmp_path / "report.json")
        assert r.returncode != 0 and "tensorflow-cpu==2.18.1" in r.stderr, r.stderr[-2000:]
        return
    # The reference's pins are the TensorFlow extra's: asking for it replaces the node's NumPy 2.5.2.
    installed = dry_run(node_python, f"{ROOT}[cpu]", tmp_path)
    assert installed.get("tensorflow-cpu") == "2.18.1"
    assert installed.get("numpy", "").startswith("2.0."), installed.get("numpy")
