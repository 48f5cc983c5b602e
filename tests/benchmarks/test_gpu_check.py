"""The GPU check (benchmarks/gpu_check*.sh, gpu_check_report.py), end to end on the CPU.

The GPU machine it is written for has PyTorch and JAX but no TensorFlow and no network. The check
runs exactly as it would there, in `--device cpu` mode (a tiny workload): it installs hepbench and
the downloaded wheels into a fresh folder without network, generates and builds a data set, runs
`hepbench run --backend torch` (eager and compiled) and `--backend jax`, and prints the table. It
runs on the node stacks, which have no TensorFlow: the GPU machine's own and the newest
(tests/node_stack.py: Python 3.12 with NumPy 2.5.2, jax 0.11.2, torch 2.11.0; Python 3.13 with the
newest), whose versions the reports must name. (The reference environment's torch and jax run the
same engines throughout the rest of the suite.)

What is cached under ~/.cache/hepbench/gpu-check, keyed by what it was made from: the wheel folders
(made by gpu_check_wheels.sh --python-version 3.12 and 3.13 from pyproject's dependencies and the
script itself). The install into the check's own folder, the data and the
runs are never cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.node_stack import STACKS

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "benchmarks" / "gpu_check.sh"
WHEELS_SCRIPT = ROOT / "benchmarks" / "gpu_check_wheels.sh"
REPORT = ROOT / "benchmarks" / "gpu_check_report.py"


def sh(*args, env=None, timeout=1800):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module", params=STACKS, ids=lambda s: s.name)
def stack(request) -> dict:
    """The Python the check runs on, its wheel folder, and the versions it must report (tests/node_stack.py)."""
    stack = request.param
    return {
        "python": stack.python(),
        "wheels": stack.wheels(),
        "python_version": stack.python_version,
        "versions": {name: stack.packages[name] for name in ("numpy", "jax", "torch")},
    }


@pytest.mark.slow
def test_the_check_runs_every_backend_without_tensorflow_and_prints_the_table(stack, tmp_path):
    has_tf = sh(stack["python"], "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None)")
    assert has_tf.stdout.strip() == "True", "the node stack must not have TensorFlow"
    work = tmp_path / "work"
    r = sh(
        CHECK,
        "--device",
        "cpu",
        "--wheels",
        stack["wheels"],
        "--work",
        work,
        env={**os.environ, "PYTHON": str(stack["python"])},
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-5000:]
    assert "frameworks here: torch yes, jax yes, tensorflow no" in out
    assert f"gpu_check: Python {stack['python_version']}." in out
    for backend, compile_ in (("torch", "eager"), ("torch-compiled", "torch.compile"), ("jax", "jax.jit")):
        summary = work / "results" / backend / "mlpf_summary.json"
        report = json.loads(summary.read_text())["report"]
        assert report["status"] == "ok", report["log"]
        backend = backend.removesuffix("-compiled")
        assert (report["backend"]["name"], report["backend"]["compile"]) == (backend, compile_)
        assert report["wl-scores"]["train"] > 0 and report["throughput"]["flops_per_second"] > 0
        assert report["config"]["data"]["pad_to_max"] is True
        # Run on the stack's own Python, NumPy and frameworks (the check installs none of them).
        assert report["software"]["python"].startswith(f"{stack['python_version']}."), report["software"]
        for name, version in stack["versions"].items():
            if name in ("numpy", backend):
                assert report["software"][name].split("+")[0] == version, (name, report["software"])
        # The table's row: the backend, its compile mode, and the summary's path.
        assert any(line.split()[:2] == [backend, compile_] and str(summary) in line for line in out.splitlines()), out[
            -3000:
        ]
    # hepbench came from this checkout, installed into the check's own folder.
    assert (work / "site" / "hepbench" / "mlpf" / "defaults.yaml").is_file()


def summary(path: Path, backend: str, device: dict, flops: float, memory: int | None, status: str = "ok") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "report": {
                    "status": status,
                    "log": "ok" if status == "ok" else "copy 0 failed: out of memory",
                    "backend": {"name": backend, "compile": "jax.jit"},
                    "precision": "bf16",
                    "wl-scores": {"train": 120.5} if status == "ok" else {},
                    "throughput": {"flops_per_second": flops},
                    "copies": [{"device": device, "peak_device_memory_bytes": memory}],
                }
            }
        )
    )
    return path


def test_the_report_compares_with_the_gpus_dense_peaks(tmp_path):
    ok = summary(
        tmp_path / "jax" / "mlpf_summary.json", "jax", {"type": "gpu", "name": "NVIDIA H200"}, 98.94e12, 3 * 2**30
    )
    failed = summary(
        tmp_path / "torch" / "mlpf_summary.json",
        "torch",
        {"type": "gpu", "name": "NVIDIA H200"},
        0.0,
        None,
        status="failed",
    )
    r = sh(sys.executable, REPORT, ok, failed)
    assert r.returncode == 1, r.stderr  # one run failed
    jax_line = next(line for line in r.stdout.splitlines() if line.startswith("jax"))
    # 98.94 TFLOP/s: 10 % of the H200's 989.4 bf16 TFLOP/s, 20 % of tf32 (494.7), 147.7 % of fp32 (67).
    assert "98.940" in jax_line and "10.0 %" in jax_line and "20.0 %" in jax_line and "147.7 %" in jax_line
    assert "3.00 GiB" in jax_line and str(ok) in jax_line
    assert "torch      FAILED: copy 0 failed: out of memory" in r.stdout
    assert "dense peaks of H200: bf16 989.4" in r.stdout


@pytest.mark.parametrize(
    "name, key",
    [
        ("NVIDIA H200", "H200"),
        ("NVIDIA H200 NVL", "H200 NVL"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA L40S", "L40S"),
        ("AMD Instinct MI300X", "MI300X"),
        ("AMD Instinct MI250X", "MI250X"),
        ("Tesla T4", None),
    ],
)
def test_peaks_are_found_by_the_device_name(name, key):
    sys.path.insert(0, str(REPORT.parent))
    try:
        import gpu_check_report
    finally:
        sys.path.remove(str(REPORT.parent))
    assert gpu_check_report.peaks_of(name)[0] == key


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "--device must be gpu or cpu, not 'tpu'"),
        (["--backends", "torch,mxnet"], "--backends: 'mxnet' is not jax, torch, torch-compiled or tensorflow"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["--wheels", "/nonexistent"], "no wheels in /nonexistent: run benchmarks/gpu_check_wheels.sh"),
    ],
)
def test_the_check_refuses_bad_options_before_installing_anything(args, message, tmp_path):
    r = sh(CHECK, *args, "--work", tmp_path / "work")
    assert r.returncode == 2 and message in r.stderr
    assert not (tmp_path / "work").exists()


def test_the_wheels_script_refuses_a_bad_python_version():
    r = sh(WHEELS_SCRIPT, "--python-version", "312")
    assert r.returncode == 2 and "--python-version must look like 3.12, not '312'" in r.stderr
