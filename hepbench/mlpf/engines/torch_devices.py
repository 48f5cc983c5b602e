"""Which GPU API PyTorch trains on here, and its runtime (docs/devices.md, "PyTorch").

PyTorch reaches NVIDIA and AMD GPUs through one API, `torch.cuda` (ROCm builds implement it on
HIP: torch.version.hip is set), and Intel GPUs through `torch.xpu` (SYCL on Level Zero). The
engine asks here which one this process has, and uses that device type's module for everything
device-specific (streams, memory, random generators): torch.get_device_module(device).
"""

from __future__ import annotations

import torch

from hepbench.core.devices import GpuRuntime


def accelerator() -> str | None:
    """The device type of this process's GPUs: "cuda" (NVIDIA, or AMD on a ROCm build), "xpu"
    (Intel), None where PyTorch sees neither."""
    if torch.cuda.is_available():
        return "cuda"
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return "xpu"
    return None


def builds() -> str:
    """What this PyTorch was built for, as a message says it ("CUDA 12.8", "ROCm (HIP) 6.4...", ...)."""
    found = [
        f"{label} {version}"
        for label, version in (
            ("CUDA", torch.version.cuda),
            ("ROCm (HIP)", getattr(torch.version, "hip", None)),
            ("XPU", getattr(torch.version, "xpu", None)),
        )
        if version
    ]
    return ", ".join(found) or "CPUs only"


def runtime(device: torch.device) -> GpuRuntime | None:
    """The runtime under `device` as this PyTorch was built for it: HIP on a ROCm build's cuda
    device, else CUDA; Level Zero on xpu, with the version of the driver SYCL reports; None on a CPU."""
    if device.type == "cuda":
        hip = getattr(torch.version, "hip", None)
        return GpuRuntime("hip", hip) if hip else GpuRuntime("cuda", torch.version.cuda)
    if device.type == "xpu":
        properties = torch.xpu.get_device_properties(device)
        return GpuRuntime("level_zero", getattr(properties, "driver_version", None) or None)
    return None
