"""Run as `python -m tests.mlpf.train.torch_devices_check`: the PyTorch engine's device choice on a
stand-in Intel GPU (torch.xpu's queries patched to answer as two XPU devices), a stand-in AMD GPU
(torch.cuda's as two devices of a ROCm build, torch.version.hip set) and no GPU, reporting
(tests/worker_results.py) per scenario the device the engine chose, the device names, the runtime
in its backend block and its peak memory, for a single copy and for DDP local rank 3.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from types import SimpleNamespace
from unittest import mock

from tests.worker_results import report

os.environ["KERAS_BACKEND"] = "torch"  # before anything imports keras
RUNTIME_KEYS = ("gpu_runtime", "gpu_runtime_version")


def facts(engine) -> dict:
    device = engine._where()
    backend = engine.backend()
    return {
        "device": str(device),
        "devices": engine.devices(),
        "peak": engine.peak_device_memory(),
        "backend": {k: backend[k] for k in RUNTIME_KEYS if k in backend},
    }


def on_stand_in(kind: str) -> dict:
    """Engines on two stand-in GPUs of torch's `kind` API ("xpu": Intel, "cuda": AMD on ROCm)."""
    import torch

    from hepbench.mlpf.engines.torch import TorchEngine

    gpus, current = torch.get_device_module(kind), [0]
    with ExitStack() as stack:
        patch = stack.enter_context
        patch(mock.patch.object(torch.cuda, "is_available", return_value=kind == "cuda"))
        patch(mock.patch.object(torch.xpu, "is_available", return_value=kind == "xpu"))
        patch(mock.patch.object(gpus, "device_count", return_value=2))
        patch(mock.patch.object(gpus, "current_device", side_effect=lambda: current[-1]))
        patch(mock.patch.object(gpus, "set_device", side_effect=current.append))
        patch(mock.patch.object(gpus, "get_device_name", side_effect=lambda d: f"stand-in {d}"))
        patch(mock.patch.object(gpus, "max_memory_allocated", return_value=123))
        if kind == "xpu":
            patch(
                mock.patch.object(
                    gpus, "get_device_properties", return_value=SimpleNamespace(driver_version="1.6.32224")
                )
            )
        else:
            patch(mock.patch.object(torch.version, "hip", "6.2.41133"))
        single = facts(TorchEngine(device="gpu"))
        os.environ["LOCAL_RANK"] = "3"
        ddp = facts(TorchEngine(kind="ddp", device="gpu"))
        return {"single": single, "ddp": ddp, "set_device": current[1:]}


def without_gpu() -> dict:
    from hepbench.mlpf.engines.base import MissingDevices
    from hepbench.mlpf.engines.torch import TorchEngine

    try:
        TorchEngine(device="gpu")._where()
        refused = None
    except MissingDevices as e:
        refused = str(e)
    return {"refused": refused, "auto": facts(TorchEngine(device=None)), "cpu": facts(TorchEngine(device="cpu"))}


if __name__ == "__main__":
    report("torch_devices", {"xpu": on_stand_in("xpu"), "hip": on_stand_in("cuda"), "none": without_gpu()})
