"""Energy of timed windows, read from cumulative hardware counters at the windows' boundaries.

No sampling thread: each source's counter is read once just before a window's clock starts and
once just after it stops, so measuring costs a few file reads or library calls outside the timed
span. Sources (docs/energy.md):

- Linux powercap (RAPL): `<dir>/intel-rapl:N/energy_uj` (a CPU package) and its `dram` sub-zone
  `intel-rapl:N:M`, in microjoules, wrapping to 0 after `max_energy_range_uj`. The core, uncore
  and psys zones are left out: core and uncore lie inside the package, psys overlaps everything.
- NVIDIA GPUs: NVML's total-energy counter (millijoules since the driver loaded), `pynvml` from
  the nvidia-ml-py distribution, imported only when asked for.
- AMD GPUs: `amdsmi`'s energy accumulator times its counter resolution (microjoules).
- Intel GPUs: not read yet; each is a source that says so (INTEL_ENERGY).

A source that cannot be read says why (`status` "unavailable", `reason`); nothing here raises
for a missing counter. The block's shape is the report's `energy` (results_schema/mlpf_summary.schema.json).
"""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_POWERCAP_DIR = "/sys/class/powercap"
PERMISSION_HINT = (
    "needs root since the 2020 RAPL side-channel fix (CVE-2020-8694), or a bind mount "
    "inside the container; docs/energy.md"
)
_PACKAGE = re.compile(r"^intel-rapl:(\d+)$")
_SUBZONE = re.compile(r"^intel-rapl:(\d+):(\d+)$")


class Unreadable(Exception):
    """A counter could not be read; the message says which and why."""


@dataclass
class Source:
    """One counter. `read()` returns its cumulative value in joules; `span` is the value at which it
    wraps to 0 (joules), None for a counter that does not wrap in practice (NVML's 64-bit mJ)."""

    name: str
    kind: str  # powercap, nvml, amdsmi
    domain: str  # package, dram, gpu
    path: str | None
    read: Callable[[], float]
    span: float | None = None
    reason: str | None = None  # set once the source has failed: it is read no more
    host: str | None = None  # the node it was read on (a job's nodes each have a package-0)
    windows: list[dict] = field(default_factory=list)
    _start: float | None = None

    def delta(self, before: float, after: float) -> float:
        """Joules between two readings; a smaller second reading means the counter wrapped once
        (a window long enough to wrap it twice cannot be told from one: docs/energy.md)."""
        if after >= before:
            return after - before
        if self.span is None:
            raise Unreadable(f"{self.name}: counter went backwards ({before} J to {after} J)")
        return after + self.span - before

    def to_dict(self) -> dict:
        joules = sum(w["joules"] for w in self.windows) if self.windows and self.reason is None else None
        seconds = sum(w["seconds"] for w in self.windows)
        return {
            "name": self.name,
            "kind": self.kind,
            "domain": self.domain,
            "path": self.path,
            "host": self.host,
            "status": "measured" if joules is not None else "unavailable",
            "reason": self.reason if joules is None else None,
            "joules": joules,
            "mean_watts": joules / seconds if joules is not None and seconds > 0 else None,
            "windows": self.windows if joules is not None else [],
        }


def _read_number(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except PermissionError:
        raise Unreadable(f"{path}: Permission denied ({PERMISSION_HINT})") from None
    except OSError as e:
        raise Unreadable(f"{path}: {e.strerror or e}") from None
    try:
        return int(text)
    except ValueError:
        raise Unreadable(f"{path}: not an integer: {text[:40]!r}") from None


def _zone_name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return zone.name


def missing(name: str, kind: str, domain: str, path: str | None, reason: str) -> Source:
    """A source that was looked for and cannot be read: the report says so and why."""

    def read() -> float:
        raise Unreadable(reason)

    return Source(name=name, kind=kind, domain=domain, path=path, read=read, reason=reason)


def _zone_dirs(root: Path) -> list[Path]:
    """The zone directories under `root`: the class directory's links (flat), or the nested tree of
    /sys/devices/virtual/powercap where a container mounts that instead; each zone once."""
    found: dict[Path, Path] = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        found.setdefault(entry.resolve(), entry)
    for parent, dirs, _ in os.walk(root):  # does not follow the class directory's links
        for d in sorted(dirs):
            found.setdefault((Path(parent) / d).resolve(), Path(parent) / d)
    return sorted(found.values(), key=lambda p: p.name)


def powercap_sources(directory: str | Path = DEFAULT_POWERCAP_DIR) -> list[Source]:
    """Every package zone and its dram sub-zones under `directory` (the powercap class directory),
    each read once now to check it; a zone that cannot be read is a `missing` source with its reason,
    and so is the whole interface when it has no package zone."""
    root = Path(directory)
    if not root.is_dir():
        return [
            missing(
                "powercap",
                "powercap",
                "package",
                str(root),
                f"powercap not readable: {root} does not exist (no RAPL driver, or not mounted in the container)",
            )
        ]
    zones, dirs = [], _zone_dirs(root)  # walked once: a dram zone's package is looked up among these
    for zone in dirs:
        package, sub = _PACKAGE.match(zone.name), _SUBZONE.match(zone.name)
        name = _zone_name(zone)
        if package and name.startswith("package"):  # a top-level psys zone overlaps the packages
            zones.append((zone, name, "package", name))
        elif sub and name == "dram":
            parent = next((z for z in dirs if z.name == f"intel-rapl:{sub.group(1)}"), zone.parent)
            zones.append((zone, name, "dram", f"{_zone_name(parent)}/dram"))
    if not zones:
        return [
            missing(
                "powercap",
                "powercap",
                "package",
                str(root),
                f"powercap not readable: no intel-rapl package zone under {root}",
            )
        ]
    sources = []
    for zone, _, domain, label in zones:
        counter = zone / "energy_uj"
        try:
            span = _read_number(zone / "max_energy_range_uj") / 1e6
            _read_number(counter)
        except Unreadable as e:
            sources.append(missing(label, "powercap", domain, str(counter), f"powercap not readable: {e}"))
            continue
        sources.append(
            Source(
                name=label,
                kind="powercap",
                domain=domain,
                path=str(counter),
                read=lambda c=counter: _read_number(c) / 1e6,
                span=span,
            )
        )
    return sources


def _import(module: str):
    try:
        return importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - ImportError, or a library failing to load its shared object
        raise Unreadable(f"{module} not importable: {e}") from None


def nvml_sources(indices: list[int], nvml=None) -> list[Source]:
    """A source per NVIDIA GPU index (NVML's own enumeration, which ignores CUDA_VISIBLE_DEVICES).
    `nvml` replaces the pynvml module (tests)."""
    try:
        nvml = nvml or _import("pynvml")
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - NVMLError (no driver) or Unreadable
        return [missing(f"gpu{i}", "nvml", "gpu", f"nvml:{i}", f"NVML not available: {e}") for i in indices]
    sources = []
    for index in indices:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name

            def read(h=handle, i=index) -> float:
                try:
                    return nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3  # mJ
                except Exception as e:  # noqa: BLE001 - NVMLError_NotSupported before Volta
                    raise Unreadable(f"NVML total energy of GPU {i}: {e}") from None

            read()
            sources.append(
                Source(name=f"gpu{index} {name}", kind="nvml", domain="gpu", path=f"nvml:{index}", read=read)
            )
        except Exception as e:  # noqa: BLE001 - NVMLError or Unreadable: this GPU is unmeasured
            sources.append(missing(f"gpu{index}", "nvml", "gpu", f"nvml:{index}", f"NVML energy not readable: {e}"))
    return sources


def amdsmi_sources(indices: list[int], amdsmi=None) -> list[Source]:
    """A source per AMD GPU index in amdsmi's processor order. `amdsmi` replaces the module (tests)."""
    try:
        amdsmi = amdsmi or _import("amdsmi")
        amdsmi.amdsmi_init()
        handles = amdsmi.amdsmi_get_processor_handles()
    except Exception as e:  # noqa: BLE001 - AmdSmiException (no driver) or Unreadable
        return [missing(f"gpu{i}", "amdsmi", "gpu", f"amdsmi:{i}", f"amdsmi not available: {e}") for i in indices]
    sources = []
    for index in indices:
        try:
            handle = handles[index]

            def read(h=handle, i=index) -> float:
                try:
                    count = amdsmi.amdsmi_get_energy_count(h)
                except Exception as e:  # noqa: BLE001
                    raise Unreadable(f"amdsmi energy of GPU {i}: {e}") from None
                # The accumulator's key changed between ROCm releases.
                ticks = count.get("energy_accumulator", count.get("power"))
                return ticks * count["counter_resolution"] / 1e6

            read()
            sources.append(
                Source(name=f"gpu{index} AMD", kind="amdsmi", domain="gpu", path=f"amdsmi:{index}", read=read)
            )
        except Exception as e:  # noqa: BLE001 - this GPU is unmeasured
            sources.append(
                missing(f"gpu{index}", "amdsmi", "gpu", f"amdsmi:{index}", f"amdsmi energy not readable: {e}")
            )
    return sources


INTEL_ENERGY = (
    "Intel GPU energy is not read: Level Zero Sysman's energy counter "
    "(zesPowerGetEnergyCounter) would give it, and hepbench has no reader for it yet (docs/energy.md)"
)


def intel_sources(indices: list[int]) -> list[Source]:
    """An Intel GPU's source: not measured, and the report says so (INTEL_ENERGY)."""
    return [missing(f"gpu{i}", "level_zero", "gpu", f"level_zero:{i}", INTEL_ENERGY) for i in indices]


def gpu_sources(indices: list[int], nvml=None, amdsmi=None, vendor: str | None = None) -> list[Source]:
    """The GPUs' sources for `vendor` (hepbench.core.devices: NVML for nvidia, amdsmi for amd, none
    yet for intel); without a vendor, NVML, or amdsmi where NVML is not there (an AMD machine); with
    neither, each GPU is a `missing` source naming both reasons."""
    if vendor == "intel":
        return intel_sources(indices)
    if vendor == "amd":
        return amdsmi_sources(indices, amdsmi)
    sources = nvml_sources(indices, nvml)
    if vendor == "nvidia":
        return sources
    if not all(s.reason and s.reason.startswith("NVML not available") for s in sources):
        return sources
    amd = amdsmi_sources(indices, amdsmi)
    if all(s.reason and s.reason.startswith("amdsmi not available") for s in amd):
        return [missing(s.name, "nvml", "gpu", s.path, f"{s.reason}; {a.reason}") for s, a in zip(sources, amd)]
    return amd


@dataclass
class EnergyMeter:
    """Reads every source at window boundaries: `start(window)` before the window's clock starts,
    `stop(window)` after it stops. A source that fails once keeps its reason and is read no more."""

    sources: list[Source]
    clock: Callable[[], float] = time.perf_counter
    _t0: float = 0.0

    def _each(self, action: Callable[[Source], None]) -> None:
        for s in self.sources:
            if s.reason is None:
                try:
                    action(s)
                except Unreadable as e:
                    s.reason = str(e)

    def start(self, window: int) -> None:
        def begin(s: Source) -> None:
            s._start = s.read()

        self._each(begin)
        self._t0 = self.clock()

    def stop(self, window: int) -> None:
        seconds = self.clock() - self._t0

        def end(s: Source) -> None:
            joules = s.delta(s._start, s.read())
            s.windows.append(
                {
                    "window": window,
                    "joules": joules,
                    "seconds": seconds,
                    "watts": joules / seconds if seconds > 0 else 0.0,
                }
            )

        self._each(end)

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.sources]


def energy_block(sources: list[dict], events: int | None) -> dict:
    """The report's `energy` block from every process's sources: joules summed over measured
    sources, seconds the longest span any of them covers, mean_watts the sum of their mean powers
    (sources run side by side), events_per_joule `events` (all copies' timed events) / joules."""
    measured = [s for s in sources if s["status"] == "measured"]
    if not measured:
        why = [s["reason"] for s in sources if s.get("reason")]
        return {
            "status": "unavailable",
            "reason": "; ".join(dict.fromkeys(why)) or "no energy counter was read",
            "joules": None,
            "seconds": None,
            "mean_watts": None,
            "events_per_joule": None,
            "sources": sources,
        }
    joules = sum(s["joules"] for s in measured)
    seconds = max(sum(w["seconds"] for w in s["windows"]) for s in measured)
    return {
        "status": "measured",
        "reason": None,
        "joules": joules,
        "seconds": seconds,
        "mean_watts": sum(s["mean_watts"] or 0.0 for s in measured),
        "events_per_joule": events / joules if events and joules > 0 else None,
        "sources": sources,
    }
