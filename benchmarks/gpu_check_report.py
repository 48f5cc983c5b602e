#!/usr/bin/env python3
"""The GPU check's table: per summary (one backend each), what ran, events/s, achieved TFLOP/s against
the GPU's dense peaks, the report's model FLOPs utilisation, peak device memory and the summary's path.

    python benchmarks/gpu_check_report.py RESULTS/*/mlpf_summary.json [--gpu NAME]

It reads the summaries hepbench wrote (report.backend, report.throughput, report.copies) with the
standard library, and the GPUs' dense peaks from hepbench's own table (hepbench/mlpf/peaks.yaml,
found by the device's name; docs/training.md, "Share of the device's peak"). Achieved TFLOP/s is
the report's throughput.flops_per_second: the model's matrix products over padded elements
(hepbench.mlpf.model.flops), the same count on every backend; MFU is the report's own
throughput.model_flops_utilisation, at the precision that ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from hepbench.mlpf.train.peaks import PRECISIONS, lookup  # noqa: E402  (PyYAML and the standard library only)


def peaks_of(name: str | None) -> tuple[str | None, dict]:
    """The table's entry matching a device name: (its key, TFLOP/s per device by precision, None
    where it has no figure), or (None, {})."""
    peak = lookup(name)
    if peak is None:
        return None, {}
    return peak.key, {p: (f / 1e12 if (f := peak.flops_per_second(p)) else None) for p in PRECISIONS}


def row(path: Path) -> dict:
    """The facts of one summary; a failed run keeps its log line instead of the figures."""
    report = json.loads(path.read_text())["report"]
    copies = report.get("copies") or []
    device = (copies[0].get("device") or {}) if copies else {}
    memory = [c.get("peak_device_memory_bytes") for c in copies if c.get("peak_device_memory_bytes")]
    backend = report.get("backend") or {}
    throughput = report.get("throughput") or {}
    return {
        "path": str(path),
        "backend": backend.get("name") or path.parent.name,
        "compile": backend.get("compile"),
        "version": backend.get("version"),
        "precision": report.get("precision"),
        "status": report.get("status"),
        "log": report.get("log"),
        "device": device.get("name"),
        "device_type": device.get("type"),
        "events_per_second": (report.get("wl-scores") or {}).get("train"),
        "flops_per_second": throughput.get("flops_per_second"),
        "model_flops_utilisation": (throughput.get("model_flops_utilisation") or {}).get("value"),
        "peak_device_memory_bytes": max(memory) if memory else None,
    }


def percent(tflops: float | None, peak: float | None) -> str:
    return f"{100 * tflops / peak:.1f} %" if tflops is not None and peak else "-"


def table(rows: list[dict], gpu: str | None = None) -> str:
    lines = []
    header = (
        f"{'backend':<10} {'compile':<14} {'precision':<9} {'events/s':>9} {'TFLOP/s':>8} "
        f"{'of bf16':>8} {'of tf32':>8} {'of fp32':>8} {'MFU':>8} {'peak mem':>9}  summary"
    )
    lines.append(header)
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['backend']:<10} FAILED: {r['log']}  ({r['path']})")
            continue
        name = gpu or r["device"]
        key, peaks = peaks_of(name) if (gpu or r["device_type"] == "gpu") else (None, {})
        tflops = r["flops_per_second"] / 1e12 if r["flops_per_second"] is not None else None
        memory = f"{r['peak_device_memory_bytes'] / 2**30:.2f} GiB" if r["peak_device_memory_bytes"] else "-"
        lines.append(
            f"{r['backend']:<10} {r['compile'] or '-':<14} {r['precision'] or '-':<9} "
            f"{r['events_per_second']:9.3f} {tflops:8.3f} {percent(tflops, peaks.get('bf16')):>8} "
            f"{percent(tflops, peaks.get('tf32')):>8} {percent(tflops, peaks.get('fp32')):>8} "
            f"{percent(r['model_flops_utilisation'], 1):>8} {memory:>9}  {r['path']}"
        )
    devices = sorted({gpu or r["device"] or "unknown" for r in rows})
    for name in devices:
        key, peaks = peaks_of(name)
        if key:
            text = ", ".join(f"{p} {peaks[p]:g}" if peaks[p] else f"{p} -" for p in ("bf16", "tf32", "fp32"))
            lines.append(f"device {name}: dense peaks of {key}: {text} TFLOP/s per device (docs/training.md: sources)")
        else:
            lines.append(f"device {name}: no peaks known for it (hepbench/mlpf/peaks.yaml)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summaries", nargs="+", type=Path, help="mlpf_summary.json files")
    parser.add_argument("--gpu", help="the GPU's name for the peaks, when the summaries' is not in the table")
    parser.add_argument("--json", action="store_true", help="the rows as JSON instead of the table")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.summaries if not p.is_file()]
    if missing:
        parser.error(f"no such summary: {', '.join(missing)}")
    rows = [row(p) for p in args.summaries]
    print(json.dumps(rows, indent=1) if args.json else table(rows, args.gpu))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
