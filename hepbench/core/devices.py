"""The GPUs of a node, for NVIDIA, AMD and Intel (docs/devices.md): which vendor's driver is there,
which GPUs its management tool lists, how a process is given some of them, and which runtime drives
them. One `Vendor` record per vendor holds every such fact; nothing outside this module names a
vendor's variable or tool.

Nothing here imports a framework: the coordinating process lists GPUs with the vendors' own tools
(nvidia-smi; amd-smi, else rocm-smi; xpu-smi), and asks a framework how many it sees only in a
subprocess (hepbench.mlpf.run.plan).

Numbering: a GPU's `index` is the vendor's physical index, the one its visibility variable takes.
A copy is given its GPUs through the vendor's variable (`assign_env`), never by an index inside a
framework, so every framework in the copy sees exactly those GPUs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/")  # where /dev, /proc and /sys are looked for (a test's stand-in node: another folder)
_TOOL_SECONDS = 30  # a management tool that takes longer is treated as absent


@dataclass(frozen=True)
class Gpu:
    """One GPU as the node's management tool (or, without one, a framework) describes it."""

    vendor: str  # Vendor.name
    index: int  # the vendor's physical index: what its visibility variable takes
    name: str
    memory_bytes: int | None = None
    bus_id: str | None = None  # the PCI address as the tool prints it

    def to_dict(self) -> dict:
        """The report's host.gpus entry (results_schema/mlpf_summary.schema.json)."""
        return {
            "index": self.index,
            "name": self.name,
            "memory_bytes": self.memory_bytes,
            "vendor": self.vendor,
            "bus_id": self.bus_id,
        }


@dataclass(frozen=True)
class GpuRuntime:
    """The programming interface under the frameworks: CUDA, HIP (ROCm) or Level Zero."""

    name: str  # "cuda", "hip" or "level_zero"
    version: str | None = None  # the runtime's version; None where nothing says it
    driver_version: str | None = None  # the kernel driver's (host listings only)

    def to_backend(self) -> dict:
        """The keys report.backend gets on a GPU run: the runtime the framework was built for."""
        return {"gpu_runtime": self.name, "gpu_runtime_version": self.version}


@dataclass(frozen=True)
class Listing:
    """What a management tool said: the GPUs, the runtime and driver it found, and which tool."""

    gpus: list[Gpu]
    runtime: GpuRuntime | None
    source: str  # the tool's name; "framework" where only the copies' own devices were known

    def host_runtime(self, vendor: str) -> dict | None:
        """report.host.gpu_runtime (None without GPUs: a CPU run's host block stays as it was)."""
        if not self.gpus:
            return None
        runtime = self.runtime or GpuRuntime(VENDORS[vendor].runtime)
        return {
            "vendor": vendor,
            "runtime": runtime.name,
            "version": runtime.version,
            "driver_version": runtime.driver_version,
            "source": self.source,
        }


@dataclass(frozen=True)
class Vendor:
    """Every fact about one vendor's GPUs that the run needs (docs/devices.md, per vendor)."""

    name: str  # "nvidia", "amd", "intel": report.host.gpus[].vendor
    runtime: str  # GpuRuntime.name of its frameworks
    driver_paths: tuple[str, ...]  # any of these existing (under ROOT) shows its compute driver
    render_vendor: str | None  # or: a DRM render node of this PCI vendor id (Intel's Level Zero)
    # The visibility variables in the order the runtime applies them: each layer's first variable
    # that is set wins; the first layer names physical GPUs, each later one indexes what the layer
    # before it left visible.
    layers: tuple[tuple[str, ...], ...]
    assign: str  # the variable a copy's GPUs are given in (physical indices, comma-separated)
    cleared: tuple[str, ...]  # dropped from a copy's environment: they would filter its GPUs again
    order: Mapping[str, str]  # makes the runtime number GPUs as the management tool does
    hidden: Mapping[str, str]  # hides every GPU from a CPU copy ({}: no value is known to hide them all)
    listers: tuple[Callable[[], Listing | None], ...] = field(repr=False, default=())

    def driver_found(self, root: Path | None = None) -> bool:
        """Whether the vendor's compute driver shows under `root` (default ROOT): a device node or
        /proc entry, or (Intel) a render node of its PCI vendor id."""
        root = ROOT if root is None else root
        if any((root / p.lstrip("/")).exists() for p in self.driver_paths):
            return True
        if self.render_vendor is None:
            return False
        for node in sorted((root / "sys/class/drm").glob("renderD*")):
            try:
                if (node / "device" / "vendor").read_text().strip().lower() == self.render_vendor:
                    return True
            except OSError:
                continue
        return False

    def visible(self, env: Mapping[str, str], count: int) -> list[str]:
        """The physical indices (or UUIDs) of the `count` GPUs a framework sees under `env`, in its order."""
        tokens: list[str] | None = None
        for layer in self.layers:
            value = next((env[v] for v in layer if v in env), None)
            if value is None:
                continue
            chosen = [t.strip() for t in value.split(",") if t.strip()]
            if tokens is None:
                tokens = chosen
            else:  # indices into what the earlier layer left visible
                tokens = [tokens[int(t)] for t in chosen if t.isdigit() and int(t) < len(tokens)]
        if tokens is None:
            tokens = [str(i) for i in range(count)]
        return tokens[:count]

    def assign_env(self, env: MutableMapping[str, str], gpus: list[str]) -> None:
        """Give a copy's process exactly `gpus` (physical indices, as `visible` returned them)."""
        for name in self.cleared:
            env.pop(name, None)
        env[self.assign] = ",".join(gpus)
        env.update(self.order)

    def hide_env(self, env: MutableMapping[str, str]) -> None:
        """Keep a CPU copy off this vendor's GPUs, where the vendor documents a way."""
        env.update(self.hidden)

    def listing(self) -> Listing | None:
        """The first of the vendor's management tools that answers (None: none is installed or answers)."""
        for lister in self.listers:
            found = lister()
            if found is not None and found.gpus:
                return found
        return None


# -- the management tools -----------------------------------------------------------------------------


def _run(*command: str) -> str | None:
    """The tool's standard output; None where it is not installed, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=_TOOL_SECONDS, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _json(text: str | None):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _integer(value) -> int | None:
    """An integer from a tool's field (an int, "123", "123.0"); None for "N/A" and the like."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return None


def _text(value) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if text and text.upper() != "N/A" else None


def parse_nvidia_smi(query: str, version: str | None) -> Listing:
    """`nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id --format=csv,noheader,nounits` (MiB)
    and `nvidia-smi --version` ("DRIVER version : ...", "CUDA Version : ..." lines)."""
    gpus = []
    for line in query.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            memory = _integer(parts[2])
            gpus.append(
                Gpu(
                    "nvidia",
                    int(parts[0]),
                    parts[1],
                    memory * 2**20 if memory is not None else None,
                    _text(parts[3]) if len(parts) > 3 else None,
                )
            )
    facts = {}
    for line in (version or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            facts[key.strip().lower()] = value.strip()
    runtime = GpuRuntime("cuda", facts.get("cuda version"), facts.get("driver version"))
    return Listing(gpus, runtime, "nvidia-smi")


def _nvidia_smi() -> Listing | None:
    query = _run("nvidia-smi", "--query-gpu=index,name,memory.total,pci.bus_id", "--format=csv,noheader,nounits")
    return parse_nvidia_smi(query, _run("nvidia-smi", "--version")) if query is not None else None


def _megabytes(vram) -> int | None:
    """amd-smi's VRAM size in bytes: {"size": {"value": N, "unit": "MB"}} (ROCm 6.2 and later) or
    {"vram_size_mb": N} / {"vram_size": N} (earlier releases), MB meaning MiB as the library counts."""
    if not isinstance(vram, dict):
        return None
    size = vram.get("size")
    if isinstance(size, dict):
        value, unit = _integer(size.get("value")), str(size.get("unit", "MB")).upper()
    else:
        value, unit = _integer(vram.get("vram_size_mb", vram.get("vram_size", size))), "MB"
    scale = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}.get(unit)
    return value * scale if value is not None and scale else None


def parse_amd_smi(static: str, version: str | None) -> Listing:
    """`amd-smi static --asic --bus --vram --json` (a list of GPUs, or {"gpu_data": [...]} since
    ROCm 6.4) and `amd-smi version --json` (rocm_version, amdgpu_version)."""
    data = _json(static)
    entries = data.get("gpu_data", []) if isinstance(data, dict) else data if isinstance(data, list) else []
    gpus = []
    for entry in entries:
        if not isinstance(entry, dict) or _integer(entry.get("gpu")) is None:
            continue
        asic, bus = entry.get("asic") or {}, entry.get("bus") or {}
        name = _text(asic.get("market_name")) if isinstance(asic, dict) else None
        bdf = _text(bus.get("bdf")) if isinstance(bus, dict) else None
        gpus.append(Gpu("amd", _integer(entry["gpu"]), name or "AMD GPU", _megabytes(entry.get("vram")), bdf))
    facts = _json(version)
    facts = facts[0] if isinstance(facts, list) and facts else facts
    facts = facts if isinstance(facts, dict) else {}
    runtime = GpuRuntime(
        "hip", _text(facts.get("rocm_version")), _text(facts.get("amdgpu_version", facts.get("kernel_version")))
    )
    return Listing(gpus, runtime, "amd-smi")


def _amd_smi() -> Listing | None:
    static = _run("amd-smi", "static", "--asic", "--bus", "--vram", "--json")
    return parse_amd_smi(static, _run("amd-smi", "version", "--json")) if static is not None else None


def parse_rocm_smi(text: str) -> Listing:
    """`rocm-smi --showproductname --showmeminfo vram --showbus --showdriverversion --json`: one
    "cardN" object per GPU (N its index) and a "system" object; key spellings vary by release."""
    data = _json(text)
    data = data if isinstance(data, dict) else {}

    def field_of(fields: dict, *names: str):
        lowered = {k.lower(): v for k, v in fields.items()}
        return next((lowered[n.lower()] for n in names if n.lower() in lowered), None)

    gpus = []
    for key, fields in data.items():
        if key.startswith("card") and key[4:].isdigit() and isinstance(fields, dict):
            name = _text(field_of(fields, "Card Series", "Card series", "Device Name", "Card model"))
            gpus.append(
                Gpu(
                    "amd",
                    int(key[4:]),
                    name or "AMD GPU",
                    _integer(field_of(fields, "VRAM Total Memory (B)")),
                    _text(field_of(fields, "PCI Bus")),
                )
            )
    system = data.get("system") if isinstance(data.get("system"), dict) else {}
    runtime = GpuRuntime("hip", None, _text(field_of(system, "Driver version")))
    return Listing(sorted(gpus, key=lambda g: g.index), runtime, "rocm-smi")


def _rocm_smi() -> Listing | None:
    text = _run("rocm-smi", "--showproductname", "--showmeminfo", "vram", "--showbus", "--showdriverversion", "--json")
    return parse_rocm_smi(text) if text is not None else None


def parse_xpu_smi(discovery: str, details: Mapping[int, str | None]) -> Listing:
    """`xpu-smi discovery -j` ({"device_list": [{"device_id", "device_name", "pci_bdf_address"}]})
    and, per device, `xpu-smi discovery -d ID -j` (memory_physical_size_byte, driver_version)."""
    data = _json(discovery)
    devices = data.get("device_list", []) if isinstance(data, dict) else []
    gpus, drivers = [], []
    for device in devices:
        index = _integer(device.get("device_id")) if isinstance(device, dict) else None
        if index is None:
            continue
        detail = _json(details.get(index))
        detail = detail if isinstance(detail, dict) else {}
        gpus.append(
            Gpu(
                "intel",
                index,
                _text(device.get("device_name")) or "Intel GPU",
                _integer(detail.get("memory_physical_size_byte")),
                _text(device.get("pci_bdf_address")),
            )
        )
        drivers.append(_text(detail.get("driver_version")))
    return Listing(gpus, GpuRuntime("level_zero", None, next((d for d in drivers if d), None)), "xpu-smi")


def _xpu_smi() -> Listing | None:
    discovery = _run("xpu-smi", "discovery", "-j")
    if discovery is None:
        return None
    ids = [gpu.index for gpu in parse_xpu_smi(discovery, {}).gpus]  # then each one's details
    return parse_xpu_smi(discovery, {i: _run("xpu-smi", "discovery", "-d", str(i), "-j") for i in ids})


# -- the vendors ----------------------------------------------------------------------------------------

NVIDIA = Vendor(
    name="nvidia",
    runtime="cuda",
    driver_paths=("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia"),
    render_vendor=None,
    layers=(("CUDA_VISIBLE_DEVICES",),),
    assign="CUDA_VISIBLE_DEVICES",
    cleared=(),
    order={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
    hidden={"CUDA_VISIBLE_DEVICES": ""},
    listers=(_nvidia_smi,),
)
# ROCr applies ROCR_VISIBLE_DEVICES first; HIP_VISIBLE_DEVICES (or CUDA_VISIBLE_DEVICES, its alias)
# indexes what ROCr left. A copy gets its GPUs in ROCR_VISIBLE_DEVICES, AMD's advice on Linux, and
# no HIP-level variable, which would index them again.
AMD = Vendor(
    name="amd",
    runtime="hip",
    driver_paths=("/dev/kfd",),
    render_vendor=None,
    layers=(("ROCR_VISIBLE_DEVICES",), ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")),
    assign="ROCR_VISIBLE_DEVICES",
    cleared=("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"),
    order={},
    hidden={"HIP_VISIBLE_DEVICES": "-1"},
    listers=(_amd_smi, _rocm_smi),
)
INTEL = Vendor(
    name="intel",
    runtime="level_zero",
    driver_paths=(),
    render_vendor="0x8086",
    layers=(("ZE_AFFINITY_MASK",),),
    assign="ZE_AFFINITY_MASK",
    cleared=(),
    order={"ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"},
    hidden={},
    listers=(_xpu_smi,),
)

VENDORS = {v.name: v for v in (NVIDIA, AMD, INTEL)}  # in the order a node's driver is looked for
# Every vendor's visibility variables: what a launcher passes on to a rank on another host.
VISIBILITY_VARIABLES = tuple(dict.fromkeys(v for vendor in VENDORS.values() for layer in vendor.layers for v in layer))


def vendor(name: str) -> Vendor:
    """The Vendor called `name`; ValueError naming the known ones for any other."""
    try:
        return VENDORS[name]
    except KeyError:
        raise ValueError(f"unknown GPU vendor {name!r} (the vendors: {', '.join(VENDORS)})") from None


def node_vendor(root: Path | None = None) -> Vendor | None:
    """The vendor whose compute driver this node (or container) shows; None without any. On a node
    with two vendors' drivers, the first in VENDORS' order (a discrete GPU before Intel's graphics)."""
    return next((v for v in VENDORS.values() if v.driver_found(root)), None)


def runtime_from_platform_version(text: str | None) -> GpuRuntime | None:
    """JAX's GPU client platform_version ("cuda 12040", "rocm ..."): CUDA's number as CUDA_VERSION
    encodes it (1000 * major + 10 * minor); ROCm's as printed."""
    name, _, number = (text or "").strip().partition(" ")
    number = number.strip().split()[0] if number.strip() else ""
    if name == "cuda":
        version = f"{int(number) // 1000}.{int(number) % 1000 // 10}" if number.isdigit() else number or None
        return GpuRuntime("cuda", version)
    if name == "rocm":
        return GpuRuntime("hip", number or None)
    return None


def runtime_from_build_info(build: Mapping) -> GpuRuntime:
    """TensorFlow's tf.sysconfig.get_build_info(): HIP on a ROCm build (is_rocm_build; its
    rocm_version where the build records one), else CUDA (cuda_version)."""
    if build.get("is_rocm_build"):
        return GpuRuntime("hip", _text(build.get("rocm_version")))
    return GpuRuntime("cuda", _text(build.get("cuda_version")))
