"""The accelerators' dense peak FLOP/s per precision: hepbench/mlpf/peaks.yaml as typed records, found
by the device's name (docs/training.md, "Share of the device's peak"). No framework, no hepbench
imports beyond the standard library and PyYAML: benchmarks/gpu_check_report.py reads it too."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
TABLE = "peaks.yaml"  # in the hepbench.mlpf package
_FIELDS = {"key", "match", "tflops", "devices_per_package", "whole_package_when", "source"}


@dataclass(frozen=True)
class DevicePeak:
    """One entry of the table: a device model's dense peaks per package, from its datasheet."""

    key: str
    match: re.Pattern
    tflops: Mapping[str, float]  # per package; a precision the device lacks is absent
    source: str
    devices_per_package: int = 1
    whole_package_when: tuple[str, str] | None = None  # (variable, value): the package is one device

    def matches(self, name: str | None) -> bool:
        return bool(name) and self.match.search(name) is not None

    def split(self, environ: Mapping[str, str] = os.environ) -> int:
        """Devices the framework shows for one package under this environment."""
        if self.whole_package_when is not None:
            variable, value = self.whole_package_when
            if environ.get(variable, "").upper() == value.upper():
                return 1
        return self.devices_per_package

    def flops_per_second(self, precision: str, environ: Mapping[str, str] = os.environ) -> float | None:
        """The peak of one device as the framework shows it, in FLOP/s; None where the table has none."""
        tflops = self.tflops.get(precision)
        return tflops * 1e12 / self.split(environ) if tflops else None


def parse(data: object, where: str = TABLE) -> tuple[DevicePeak, ...]:
    """The table's records from its YAML document; ValueError naming the entry that is malformed."""
    entries = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where}: expected a non-empty list under 'devices'")
    peaks, keys = [], set()
    for i, entry in enumerate(entries):
        label = f"{where}: devices[{i}]" + (f" ({entry.get('key')})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict) or not {"key", "match", "tflops", "source"} <= set(entry):
            raise ValueError(f"{label}: needs key, match, tflops and source")
        if set(entry) - _FIELDS:
            raise ValueError(f"{label}: unknown field(s) {sorted(set(entry) - _FIELDS)}")
        tflops = entry["tflops"]
        if (
            not isinstance(tflops, dict)
            or not tflops
            or set(tflops) - set(PRECISIONS)
            or not all(isinstance(v, (int, float)) and v > 0 for v in tflops.values())
        ):
            raise ValueError(f"{label}: tflops must map some of {PRECISIONS} to positive numbers, not {tflops!r}")
        if entry["key"] in keys:
            raise ValueError(f"{label}: key {entry['key']!r} appears twice")
        keys.add(entry["key"])
        split = entry.get("devices_per_package", 1)
        if not isinstance(split, int) or split < 1:
            raise ValueError(f"{label}: devices_per_package must be a positive integer, not {split!r}")
        whole = entry.get("whole_package_when")
        if whole is not None and (not isinstance(whole, str) or "=" not in whole):
            raise ValueError(f"{label}: whole_package_when must be NAME=VALUE, not {whole!r}")
        try:
            pattern = re.compile(entry["match"], re.IGNORECASE)
        except (re.error, TypeError) as e:
            raise ValueError(f"{label}: match {entry['match']!r} is not a regular expression ({e})") from None
        peaks.append(
            DevicePeak(
                key=str(entry["key"]),
                match=pattern,
                source=str(entry["source"]),
                tflops={k: float(v) for k, v in tflops.items()},
                devices_per_package=split,
                whole_package_when=tuple(whole.split("=", 1)) if whole else None,
            )
        )
    return tuple(peaks)


@functools.cache
def table() -> tuple[DevicePeak, ...]:
    """The packaged table, in matching order."""
    text = resources.files("hepbench.mlpf").joinpath(TABLE).read_text(encoding="utf-8")
    return parse(yaml.safe_load(text))


def lookup(name: str | None) -> DevicePeak | None:
    """The first entry whose expression occurs in the device name ("NVIDIA H100 PCIe" → H100 PCIe,
    "AMD Instinct MI300X" → MI300X); None for a device the table does not know."""
    return next((p for p in table() if p.matches(name)), None)
