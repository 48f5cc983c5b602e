"""Model FLOPs utilisation: the model FLOP/s a copy or a run achieved ÷ the peak of the devices it ran
on, at the precision that ran (docs/training.md, "Share of the device's peak").

A GPU's peak comes from the datasheet table (hepbench.mlpf.train.peaks) by the device's name; a CPU
copy's is its own measured matmul ceiling (hepbench.mlpf.engines.ceiling, the entry's `ceiling`).
A run's peak is the sum of its copies' peaks: copies on one CPU each measured on their own CPU set,
so together they measured the machine's share the run used; GPUs count once per copy (or replica).
Works on the report's plain dicts (copy entries, the config's `train` section): the copy process
and the coordinating process both compute it. No framework.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from hepbench.mlpf.train.peaks import DevicePeak, lookup

MEASURED = "measured: each CPU copy's own matmul ceiling before its clock, summed over the copies (copies[].ceiling)"


@dataclass(frozen=True)
class Peak:
    """The peak FLOP/s some devices are measured against, or why there is none."""

    flops_per_second: float | None
    precision: str  # fp32, tf32, bf16 or fp16: the precision of the peak
    devices: int  # GPUs (or replicas) it counts; CPU copies, each with its ceiling
    source: str | None  # the datasheet, or MEASURED
    table_entry: str | None  # the peaks table's key matched by the device name (GPUs)
    reason: str | None = None  # why flops_per_second is None


@dataclass(frozen=True)
class Utilisation:
    """The report's model_flops_utilisation block (report.throughput and each copy)."""

    value: float | None  # achieved / peak_flops_per_second (a fraction)
    peak_flops_per_second: float | None
    precision: str
    devices: int
    source: str | None
    table_entry: str | None
    reason: str | None  # why value is None

    def to_dict(self) -> dict:
        return asdict(self)


def gpu_precision(precision: str, fp32_matmul: str, peak: DevicePeak) -> str:
    """The precision a GPU's matrix products ran in: an fp32 run asked for TF32 runs TF32 where the
    device has it (train.fp32_matmul, set alike on every engine: docs/engines.md); mixed precision
    counts at its 16-bit peak (its few float32 products left aside)."""
    if precision == "fp32" and fp32_matmul == "tf32" and "tf32" in peak.tflops:
        return "tf32"
    return precision


def copy_devices(entry: Mapping) -> list[dict]:
    """The devices a copy's entry trained on: a mirrored copy's replicas, else its one device."""
    devices = entry.get("replica_devices") or [entry.get("device")]
    return [d for d in devices if isinstance(d, dict)]


def copy_peak(entry: Mapping, precision: str, fp32_matmul: str, environ: Mapping[str, str] = os.environ) -> Peak:
    """The peak of one copy's devices (its entry: device, replica_devices, ceiling)."""
    devices = copy_devices(entry)
    if not devices:
        return Peak(None, precision, 0, None, None, "the copy reported no device")
    if devices[0].get("type") == "cpu":
        # A mirrored copy's replicas are logical devices of one CPU set: its one ceiling covers them.
        ceiling = entry.get("ceiling")
        if not isinstance(ceiling, Mapping):
            return Peak(
                None,
                precision,
                1,
                None,
                None,
                "no matmul ceiling measured on the CPU (bench.ceiling_seconds = 0, or the copy stopped first)",
            )
        return Peak(ceiling["flops_per_second"], ceiling["precision"], 1, MEASURED, None)
    total, used = 0.0, set()
    for device in devices:
        name = device.get("name")
        peak = lookup(name)
        if peak is None:
            return Peak(
                None,
                precision,
                len(devices),
                None,
                None,
                f"device {name!r} is not in the peaks table (hepbench/mlpf/peaks.yaml)",
            )
        ran = gpu_precision(precision, fp32_matmul, peak)
        flops = peak.flops_per_second(ran, environ)
        if flops is None:
            return Peak(
                None, ran, len(devices), peak.source, peak.key, f"the peaks table has no {ran} peak for {peak.key}"
            )
        total += flops
        used.add((ran, peak.source, peak.key))
    # Mixed devices in one copy name them all, as combined() does a run's copies.
    ran, source, key = (joint.join(sorted({u[i] for u in used})) for i, joint in enumerate((" + ", "; ", "; ")))
    return Peak(total, ran, len(devices), source, key)


def combined(peaks: list[Peak]) -> Peak:
    """The peaks of a run's copies as one: their sum, or the first reason one of them has none."""
    if not peaks:
        return Peak(None, "fp32", 0, None, None, "no copies")
    devices = sum(p.devices for p in peaks)
    missing = next((p for p in peaks if p.flops_per_second is None), None)

    def joined(field: str) -> str | None:
        values = list(dict.fromkeys(getattr(p, field) for p in peaks if getattr(p, field)))
        return "; ".join(values) if values else None

    if missing is not None:
        return Peak(None, missing.precision, devices, joined("source"), joined("table_entry"), missing.reason)
    return Peak(
        sum(p.flops_per_second for p in peaks),
        " + ".join(dict.fromkeys(p.precision for p in peaks)),
        devices,
        joined("source"),
        joined("table_entry"),
    )


def utilisation(achieved: float | None, peak: Peak, failed: str = "no FLOP/s achieved (the run failed)") -> Utilisation:
    """achieved / peak, or None with the reason (the peak's own, else `failed` without a figure)."""
    value, reason = None, peak.reason
    if reason is None:
        if achieved is None:
            reason = failed
        else:
            value = achieved / peak.flops_per_second
    return Utilisation(
        value=value,
        peak_flops_per_second=peak.flops_per_second,
        precision=peak.precision,
        devices=peak.devices,
        source=peak.source,
        table_entry=peak.table_entry,
        reason=reason,
    )


def run_utilisation(copies: list[dict], train: Mapping, achieved: float | None) -> Utilisation:
    """The run's block: `achieved` (report.throughput.flops_per_second, summed over copies) ÷ the sum
    of the copies' peaks, at the configuration's precision (`train`: the config's train section)."""
    peaks = [copy_peak(c, train["precision"], train["fp32_matmul"]) for c in copies]
    return utilisation(achieved, combined(peaks))
