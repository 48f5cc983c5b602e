"""hepbench installs into an accelerator node's own stack without changing it (docs/installing.md).

The stack of the GPU machine that benchmarks/gpu_check.sh targets (tests/node_stack.py: Python 3.12,
NumPy 2.5.2, jax 0.11.2, torch 2.11.0, installed first). pip's dry run of hepbench with the JAX and
PyTorch extras must install hepbench and what it lacks, and none of those four; the same dry run
with the TensorFlow extra (the reference's pins, NumPy 2.0.x) would replace NumPy, which shows the
check can fail.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests import node_stack
from tests.node_stack import NODE_STACK

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def node_python() -> Path:
    return node_stack.node_python()


def dry_run(python: Path, target: str, tmp_path: Path) -> dict[str, str]:
    """{package: version} that `pip install target` would install (pip's installation report)."""
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    r = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
                        "--report", report, target], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


def test_the_node_stack_is_what_the_node_has(node_python):
    r = subprocess.run([node_python, "-c", "import sys, numpy, jax, jaxlib, torch; print(sys.version_info[:2], "
                        "numpy.__version__, jax.__version__, jaxlib.__version__, torch.__version__)"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split(maxsplit=2)[:2] == ["(3,", "12)"]
    assert r.stdout.split()[2:5] == ["2.5.2", "0.11.2", "0.11.2"] and r.stdout.split()[5].startswith("2.11.0")


def test_installing_the_jax_and_torch_engines_keeps_the_nodes_numpy_jax_and_torch(node_python, tmp_path):
    installed = dry_run(node_python, f"{ROOT}[jax,torch]", tmp_path)
    assert "hepbench" in installed and "keras" in installed  # what it lacks, it gets
    assert not set(NODE_STACK) & set(installed), {k: installed[k] for k in set(NODE_STACK) & set(installed)}
    assert "tensorflow" not in installed and "tensorflow-cpu" not in installed


def test_the_tensorflow_extra_would_bring_the_references_numpy(node_python, tmp_path):
    # The reference's pins are the TensorFlow extra's: asking for it replaces the node's NumPy 2.5.2.
    installed = dry_run(node_python, f"{ROOT}[cpu]", tmp_path)
    assert installed.get("tensorflow-cpu") == "2.18.1"
    assert installed.get("numpy", "").startswith("2.0."), installed.get("numpy")
