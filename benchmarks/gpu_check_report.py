#!/usr/bin/env python3
"""The GPU check's table: per summary (one backend each), what ran, events/s, achieved TFLOP/s against
the GPU's dense peaks, peak device memory and the summary's path.

    python benchmarks/gpu_check_report.py RESULTS/*/mlpf_summary.json [--gpu NAME]

Standard library only: it reads the summaries hepbench wrote (report.backend, report.throughput,
report.copies) and knows the peaks of a few GPUs by name (PEAKS; sources in benchmarks/README.md).
Achieved TFLOP/s is the report's throughput.flops_per_second: the model's matrix products over
padded elements (hepbench.mlpf.model.flops), the same count on every backend.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Dense (no 2:4 sparsity) peaks in TFLOP/s from the vendors' datasheets: plain fp32, TF32 (the
# tensor cores' fp32 matmul, which XLA uses for fp32 on NVIDIA GPUs unless told otherwise) and bf16.
# AMD's fp32 is the matrix-core rate. Matched in order against the device name: the first
# (case-insensitive) substring that occurs wins, so the specific names come before the general ones.
PEAKS = (
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),  # SXM, named plainly 'NVIDIA H200'
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H100 PCIe", {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),  # SXM: 'NVIDIA H100 80GB HBM3'
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),  # SXM4 and PCIe, 40 and 80 GB
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05}),
    ("MI300X", {"fp32": 163.4, "tf32": 653.7, "bf16": 1307.4}),
    ("MI250X", {"fp32": 95.7, "tf32": None, "bf16": 383.0}),
)


def peaks_of(name: str | None) -> tuple[str | None, dict]:
    """The PEAKS entry matching a device name: (its key, its peaks), or (None, {})."""
    for key, peaks in PEAKS:
        if name and key.lower() in name.lower():
            return key, peaks
    return None, {}


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
        "peak_device_memory_bytes": max(memory) if memory else None,
    }


def percent(tflops: float | None, peak: float | None) -> str:
    return f"{100 * tflops / peak:.1f} %" if tflops is not None and peak else "-"


def table(rows: list[dict], gpu: str | None = None) -> str:
    lines = []
    header = (f"{'backend':<10} {'compile':<14} {'precision':<9} {'events/s':>9} {'TFLOP/s':>8} "
              f"{'of bf16':>8} {'of tf32':>8} {'of fp32':>8} {'peak mem':>9}  summary")
    lines.append(header)
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['backend']:<10} FAILED: {r['log']}  ({r['path']})")
            continue
        name = gpu or r["device"]
        key, peaks = peaks_of(name) if (gpu or r["device_type"] == "gpu") else (None, {})
        tflops = r["flops_per_second"] / 1e12 if r["flops_per_second"] is not None else None
        memory = f"{r['peak_device_memory_bytes'] / 2**30:.2f} GiB" if r["peak_device_memory_bytes"] else "-"
        lines.append(f"{r['backend']:<10} {r['compile'] or '-':<14} {r['precision'] or '-':<9} "
                     f"{r['events_per_second']:9.3f} {tflops:8.3f} {percent(tflops, peaks.get('bf16')):>8} "
                     f"{percent(tflops, peaks.get('tf32')):>8} {percent(tflops, peaks.get('fp32')):>8} {memory:>9}  "
                     f"{r['path']}")
    devices = sorted({gpu or r["device"] or "unknown" for r in rows})
    for name in devices:
        key, peaks = peaks_of(name)
        if key:
            lines.append(f"device {name}: dense peaks of {key}: bf16 {peaks['bf16']} TFLOP/s, "
                         f"tf32 {peaks['tf32'] or '-'}, fp32 {peaks['fp32']} (benchmarks/README.md: sources)")
        else:
            lines.append(f"device {name}: no peaks known for it (benchmarks/gpu_check_report.py: PEAKS)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summaries", nargs="+", type=Path, help="mlpf_summary.json files")
    parser.add_argument("--gpu", help="the GPU's name for the peaks, when the summaries' is not in PEAKS")
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
