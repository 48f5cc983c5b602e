"""The HEPscore summary `mlpf_summary.json`: copies' results → one validated report.

HEPscore reads `app`, `run_info` and `report["wl-scores"]` (numbers) and copies the rest of
`report` into its own report; everything a reader needs to trust the number therefore sits in
`report` (see results_schema/mlpf_summary.schema.json for every field).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hepbench import __version__
from hepbench.core.files import atomic_open
from hepbench.core.hostinfo import bmk_checksum, containment
from hepbench.core.schema import validate_report
from hepbench.mlpf.train.throughput import DEFINITION, stats

WORKLOAD = "mlpf-bmk"
SUMMARY_FILE = "mlpf_summary.json"
DESCRIPTION = (
    "MLPF (CMS machine-learned particle flow, PFNetDense) training throughput on Delphes ttbar "
    f"events; hepbench {__version__}"
)


@dataclass
class RunContext:
    """What the coordinating process knows about the run besides the copies' own results."""

    benchmark: dict  # device, copies, threads_per_copy, windows, events_per_window, ...
    config: dict
    dataset: dict
    model: dict
    software: dict
    host: dict
    timing: dict
    command: list[str]
    extra_arguments: str = ""
    log: str | None = None  # overrides the log built from the copies (e.g. "interrupted by SIGTERM")


def _sum(values) -> float | None:
    values = list(values)
    return sum(values) if values and all(v is not None for v in values) else None


def _failure_log(copies: list[dict]) -> str:
    failed = [c for c in copies if c["status"] != "ok"]
    # The copy that failed first for its own reason explains the run; "stopped" copies follow it.
    own = [c for c in failed if not c["log"].startswith("stopped:")] or failed
    return "; ".join(f"copy {c['copy']}: {c['log']}" for c in own)


def _devices(copies: list[dict]) -> list[dict]:
    """One entry per device: a mirrored copy has one per replica."""
    devices = []
    for c in copies:
        if "replica_devices" in c:
            devices += [{"copy": c["copy"], "replica": r, **d, "cpus": c["cpus"]} for r, d in enumerate(c["replica_devices"])]
        else:
            devices.append({"copy": c["copy"], **c["device"], "cpus": c["cpus"]})
    return devices


def build_report(copies: list[dict], ctx: RunContext) -> dict:
    ok = all(c["status"] == "ok" for c in copies) and ctx.log is None
    rates = [c["train"]["events_per_second"] for c in copies] if ok else []
    score = sum(rates) if ok else None
    trains = [c["train"] for c in copies] if ok else []
    all_windows = [w["events_per_second"] for c in copies for w in c["windows"]]
    cfg = ctx.config
    return {
        "app": {
            "name": WORKLOAD,
            "version": __version__,
            "description": DESCRIPTION,
            "containment": containment(),
            "bmk_checksum": bmk_checksum(),
            "bmkdata_checksum": ctx.dataset["checksum"],
            "devices": _devices(copies),
        },
        "run_info": {
            "copies": len(copies),
            "threads_per_copy": ctx.benchmark["threads_per_copy"],
            "events_per_thread": ctx.benchmark["events_per_window"],
            "extra_arguments": ctx.extra_arguments,
        },
        "report": {
            "wl-scores": {"train": score} if ok else {},
            "wl-stats": stats(rates) if ok else {},
            "log": "ok" if ok else (ctx.log or _failure_log(copies)),
            "status": "ok" if ok else "failed",
            "definition": DEFINITION,
            "throughput": {
                "unit": "events/s",
                "train": score,
                "validation": _sum(c["validation"]["events_per_second"] for c in copies if c["validation"])
                if ok and any(c["validation"] for c in copies) else None,
                "real_elements_per_second": _sum(t["real_elements_per_second"] for t in trains),
                "padded_elements_per_second": _sum(t["padded_elements_per_second"] for t in trains),
                "flops_per_second": _sum(t["flops_per_second"] for t in trains),
                "windows": stats(all_windows) if ok else None,
            },
            "copies": copies,
            "benchmark": ctx.benchmark,
            "config": cfg,
            "precision": cfg["train"]["precision"],
            "jit_compile": cfg["train"]["jit_compile"],
            "dataset": ctx.dataset,
            "model": ctx.model,
            "software": ctx.software,
            "host": ctx.host,
            "timing": ctx.timing,
            "command": ctx.command,
        },
    }


def write_json(path: Path, data: dict) -> None:
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)  # NaN is not JSON: fail rather than write it
        f.write("\n")


def write_workload_files(summary: dict, results_dir: Path, summary_file: str, inputs_extra: str = "") -> Path:
    """inputs.log, version.json (= app) and the summary, each atomically; the summary last, so its
    presence means the others are complete. `summary` must be validated already."""
    results_dir = Path(results_dir)
    info = summary["run_info"]
    with atomic_open(results_dir / "inputs.log", "w") as f:  # as the HEP-workloads write beside the summary
        f.write(f"NCOPIES={info['copies']}\nNTHREADS={info['threads_per_copy']}\n"
                f"NEVENTS_THREAD={info['events_per_thread']}\nEXTRA_ARGS={info['extra_arguments']}\n{inputs_extra}")
    write_json(results_dir / "version.json", summary["app"])
    path = results_dir / summary_file
    write_json(path, summary)
    return path


def write_report(report: dict, results_dir: Path) -> Path:
    """Validate, then write the summary, `version.json` (= app) and `inputs.log`, each atomically."""
    validate_report(report, source="the report of this run")
    return write_workload_files(report, results_dir, SUMMARY_FILE,
                                f"DEVICE={report['report']['benchmark']['device']}\n")


def score_line(report: dict) -> str:
    r = report["report"]
    if r["status"] != "ok":
        return f"{WORKLOAD}: FAILED: {r['log']}"
    n = report["run_info"]["copies"]
    if r["benchmark"].get("strategy") == "horovod":
        what = f"{n} Horovod rank{'' if n == 1 else 's'}"
    elif r["benchmark"].get("strategy") == "mirrored":
        what = f"1 process, {len(report['app']['devices'])} mirrored replicas"
    else:
        what = f"{n} cop{'y' if n == 1 else 'ies'}"
    return f"{WORKLOAD} train score: {r['wl-scores']['train']:.4g} events/s ({what}, {r['benchmark']['device']}, {r['precision']})"

