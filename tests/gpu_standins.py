"""A stand-in GPU node on a CPU machine, for each vendor (docs/devices.md): its management tools
as executable scripts on the PATH printing their documented formats, a node root whose /dev or /sys
shows the vendor's compute driver (hepbench.core.devices.ROOT), and a fake `torch` on the PYTHONPATH
of child processes (the run's GPU probe) whose GPU queries answer as a CUDA, ROCm (HIP) or XPU build
with a given number of GPUs.

`install(tmp_path, monkeypatch, vendor, gpus=2)` sets all of it up for one test; the outputs below
are also the parsers' test inputs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hepbench.core import devices

# nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id --format=csv,noheader,nounits (MiB), and --version
NVIDIA_QUERY = "0, NVIDIA A100-SXM4-80GB, 81920, 00000000:07:00.0\n1, NVIDIA A100-SXM4-80GB, 81920, 00000000:0B:00.0\n"
NVIDIA_VERSION = (
    "NVIDIA-SMI version  : 550.54.15\nNVML version        : 550.54\n"
    "DRIVER version      : 550.54.15\nCUDA Version        : 12.4\n"
)


def _amd_gpu(index: int, bdf: str) -> dict:
    return {
        "gpu": index,
        "asic": {
            "market_name": "AMD Instinct MI250X",
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices",
            "device_id": "0x740c",
            "rev_id": "0x01",
            "asic_serial": "0x1A2B3C4D5E6F7081",
        },
        "bus": {"bdf": bdf, "max_pcie_width": 16, "max_pcie_speed": {"value": 16, "unit": "GT/s"}},
        "vram": {
            "type": "HBM",
            "vendor": "N/A",
            "size": {"value": 65520, "unit": "MB"},
            "bit_width": 4096,
            "max_bandwidth": {"value": 1638, "unit": "GB/s"},
        },
    }


# amd-smi static --asic --bus --vram --json (the {"gpu_data": [...]} form of ROCm 6.4 and later), and version --json
AMD_STATIC = json.dumps({"gpu_data": [_amd_gpu(0, "0000:c1:00.0"), _amd_gpu(1, "0000:c6:00.0")]}, indent=4)
AMD_VERSION = json.dumps(
    {
        "tool": "AMDSMI Tool",
        "version": "24.6.3+9578815",
        "amdsmi_library_version": "24.6.3",
        "rocm_version": "6.2.2",
        "amdgpu_version": "6.8.5",
    },
    indent=4,
)
# rocm-smi --showproductname --showmeminfo vram --showbus --showdriverversion --json
ROCM_SMI = json.dumps(
    {
        **{
            f"card{i}": {
                "Card Series": "AMD Instinct MI250X",
                "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
                "VRAM Total Memory (B)": "68702699520",
                "VRAM Total Used Memory (B)": "10960896",
                "PCI Bus": bus,
            }
            for i, bus in enumerate(("0000:C1:00.0", "0000:C6:00.0"))
        },
        "system": {"Driver version": "6.8.5"},
    }
)
# xpu-smi discovery -j, and discovery -d ID -j
XPU_DISCOVERY = json.dumps(
    {
        "device_list": [
            {
                "device_id": i,
                "device_name": "Intel(R) Data Center GPU Max 1550",
                "device_type": "GPU",
                "pci_bdf_address": bdf,
                "pci_device_id": "0xbd5",
                "uuid": f"00000000-0000-00{i}9-0000-000000bd58086",
                "vendor_name": "Intel(R) Corporation",
            }
            for i, bdf in enumerate(("0000:29:00.0", "0000:3a:00.0"))
        ]
    },
    indent=4,
)
XPU_DETAILS = {
    i: json.dumps(
        {
            "device_id": i,
            "device_name": "Intel(R) Data Center GPU Max 1550",
            "driver_version": "I915_24.3.23_PSB_240416.31",
            "memory_physical_size_byte": "137438953472",
            "pci_bdf_address": bdf,
        },
        indent=4,
    )
    for i, bdf in enumerate(("0000:29:00.0", "0000:3a:00.0"))
}

# What each stand-in tool prints, by its arguments (any other arguments: exit 2, as a tool refusing them).
TOOLS = {
    "nvidia-smi": {
        ("--query-gpu=index,name,memory.total,pci.bus_id", "--format=csv,noheader,nounits"): NVIDIA_QUERY,
        ("--version",): NVIDIA_VERSION,
    },
    "amd-smi": {("static", "--asic", "--bus", "--vram", "--json"): AMD_STATIC, ("version", "--json"): AMD_VERSION},
    "rocm-smi": {
        ("--showproductname", "--showmeminfo", "vram", "--showbus", "--showdriverversion", "--json"): ROCM_SMI
    },
    "xpu-smi": {
        ("discovery", "-j"): XPU_DISCOVERY,
        **{("discovery", "-d", str(i), "-j"): text for i, text in XPU_DETAILS.items()},
    },
}
VENDOR_TOOLS = {"nvidia": ("nvidia-smi",), "amd": ("amd-smi", "rocm-smi"), "intel": ("xpu-smi",)}
FAKE_API = {"nvidia": "cuda", "amd": "hip", "intel": "xpu"}  # the fake torch's build on each vendor's node

FAKE_TORCH = '''"""A stand-in torch for the GPU probe: a FAKE_TORCH_API (cuda, hip, xpu) build, FAKE_TORCH_GPUS GPUs."""
import os

_API, _N = os.environ.get("FAKE_TORCH_API", "cuda"), int(os.environ.get("FAKE_TORCH_GPUS", "0"))


class _Gpus:
    def __init__(self, n):
        self._n = n

    def is_available(self):
        return self._n > 0

    def device_count(self):
        return self._n


cuda = _Gpus(_N if _API in ("cuda", "hip") else 0)
xpu = _Gpus(_N if _API == "xpu" else 0)


class version:
    cuda = "12.4" if _API == "cuda" else None
    hip = "6.2.41133" if _API == "hip" else None
    xpu = "20250101" if _API == "xpu" else None
'''


def write_tool(folder: Path, name: str, outputs: dict | None = None) -> Path:
    """An executable `name` in `folder` printing outputs[tuple(argv)] (default: TOOLS[name])."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    table = {" ".join(k): v for k, v in (TOOLS[name] if outputs is None else outputs).items()}
    path.write_text(
        f"#!{sys.executable}\nimport sys\nOUT = {table!r}\nkey = ' '.join(sys.argv[1:])\n"
        "if key not in OUT:\n    sys.exit(2)\nsys.stdout.write(OUT[key])\n"
    )
    path.chmod(0o755)
    return path


def make_node(root: Path, vendor: str) -> Path:
    """A node root under which `vendor`'s compute driver shows (what hepbench.core.devices looks for)."""
    if vendor == "nvidia":
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "dev" / "nvidiactl").write_text("")
    elif vendor == "amd":
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "dev" / "kfd").write_text("")
    else:
        node = root / "sys" / "class" / "drm" / "renderD128" / "device"
        node.mkdir(parents=True, exist_ok=True)
        (node / "vendor").write_text("0x8086\n")
    return root


def install(tmp_path: Path, monkeypatch, vendor: str, gpus: int = 2, tools: tuple[str, ...] | None = None) -> None:
    """Make this test's process and its children see a `vendor` node with `gpus` GPUs (the fake
    torch's count) and the vendor's tools (`tools`: only these of them) on the PATH; no visibility
    variable of the real environment is kept."""
    bin_dir = tmp_path / "standin-bin"
    for name in VENDOR_TOOLS[vendor] if tools is None else tools:
        write_tool(bin_dir, name)
    bin_dir.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(devices, "ROOT", make_node(tmp_path / "standin-node", vendor))
    fake = tmp_path / "standin-python" / "torch"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(FAKE_TORCH)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("FAKE_TORCH_API", FAKE_API[vendor])
    monkeypatch.setenv("FAKE_TORCH_GPUS", str(gpus))
    for name in devices.VISIBILITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
