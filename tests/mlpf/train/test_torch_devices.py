"""The PyTorch engine picks Intel GPUs through torch.xpu and AMD GPUs through torch.cuda on a ROCm
build, and its report says which runtime drove them; a CPU engine's backend block has no runtime.
Stand-in GPUs (torch's queries patched) in a child process on the torch backend
(tests/mlpf/train/torch_devices_check.py): Keras picks its backend once per process."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.worker_results import run_workers

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch is the torch extra: pip install 'hepbench[torch]'"
)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def found():
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "SLURM_LOCALID")}
    r, results = run_workers(
        [sys.executable, "-m", "tests.mlpf.train.torch_devices_check"],
        cwd=ROOT,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return results["torch_devices"]


def test_an_intel_gpu_is_torch_s_xpu_device_and_its_runtime_level_zero(found):
    xpu = found["xpu"]
    assert xpu["single"] == {
        "device": "xpu:0",
        "devices": [{"type": "gpu", "name": "stand-in xpu:0"}],
        "peak": 123,
        "backend": {"gpu_runtime": "level_zero", "gpu_runtime_version": "1.6.32224"},
    }
    assert xpu["ddp"]["device"] == "xpu:1" and xpu["set_device"] == [1]  # local rank 3 of 2 GPUs


def test_an_amd_gpu_is_a_cuda_device_of_a_rocm_build_and_its_runtime_hip(found):
    hip = found["hip"]
    assert hip["single"]["device"] == "cuda:0" and hip["ddp"]["device"] == "cuda:1"
    assert hip["single"]["backend"] == {"gpu_runtime": "hip", "gpu_runtime_version": "6.2.41133"}


def test_without_a_gpu_the_engine_refuses_gpu_and_reports_no_runtime(found):
    none = found["none"]
    assert none["refused"].startswith("PyTorch sees no GPU (torch ") and "built for " in none["refused"]
    for engine in (none["auto"], none["cpu"]):  # a CPU run's backend block is as it was
        assert (engine["device"], engine["backend"], engine["peak"]) == ("cpu", {}, None)
