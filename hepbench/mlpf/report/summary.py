"""The HEPscore summary `mlpf_summary.json`: copies' results → one validated report.

HEPscore reads `app`, `run_info` and `report["wl-scores"]` (numbers) and copies the rest of
`report` into its own report; everything a reader needs to trust the number therefore sits in
`report` (see results_schema/mlpf_summary.schema.json for every field). The envelope, its
validation and its files are the core's (hepbench.core.envelope); this module fills it for MLPF.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from hepbench import __version__
from hepbench.core.energy import energy_block
from hepbench.core.envelope import RunInfo, Workload, build_summary, write_summary
from hepbench.core.hostinfo import distribution_version
from hepbench.core.stats import stats
from hepbench.mlpf.train.numerics import arithmetic, not_run
from hepbench.mlpf.train.throughput import DEFINITION, stability
from hepbench.mlpf.train.utilisation import run_utilisation

WORKLOAD = "mlpf-bmk"
SUMMARY_FILE = "mlpf_summary.json"
SCHEMA = "mlpf_summary.schema.json"
DESCRIPTION = (
    "MLPF (CMS machine-learned particle flow, PFNetDense) training throughput on Delphes ttbar "
    f"events; hepbench {__version__}"
)
BMK = Workload(
    name=WORKLOAD,
    version=__version__,
    description=DESCRIPTION,
    definition=DEFINITION,
    summary_file=SUMMARY_FILE,
    schema=SCHEMA,
)


@dataclass
class RunContext:
    """What the coordinating process knows about the run besides the copies' own results."""

    benchmark: dict  # device, copies, threads_per_copy, windows, events_per_window, ...
    config: dict
    dataset: dict
    model: dict
    software: dict
    backend: dict  # Engine.backend(): name, version, keras, compile (+ jaxlib)
    host: dict
    timing: dict
    command: list[str]
    extra_arguments: str = ""
    log: str | None = None  # overrides the log built from the copies (e.g. "interrupted by SIGTERM")
    numerics: dict | None = None  # copy 0's numerics check (NumericsCheck.to_dict); None: it never ran


_STABILITY_KEYS = ("confidence_interval", "window_cv_percent", "first_window_ratio", "real_element_fraction")


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
            devices += [
                {"copy": c["copy"], "replica": r, **d, "cpus": c["cpus"]} for r, d in enumerate(c["replica_devices"])
            ]
        else:
            devices.append({"copy": c["copy"], **c["device"], "cpus": c["cpus"]})
    return devices


def software_versions() -> dict:
    """The report's software block from package metadata (every backend's framework, None where
    absent); the copies add their framework's CUDA build."""
    return {
        "hepbench": __version__,
        "python": platform.python_version(),
        "tensorflow": distribution_version("tensorflow", "tensorflow-cpu") or "not installed",
        "keras": distribution_version("keras") or "not installed",
        "jax": distribution_version("jax"),
        "jaxlib": distribution_version("jaxlib"),
        "torch": distribution_version("torch"),
        "numpy": distribution_version("numpy"),
        "tensorflow_datasets": distribution_version("tensorflow-datasets"),
        "horovod": distribution_version("horovod"),
        "mlperf_logging": distribution_version("mlperf-logging"),
        "cuda": None,
        "cudnn": None,
    }


def build_report(copies: list[dict], ctx: RunContext) -> dict:
    ok = all(c["status"] == "ok" for c in copies) and ctx.log is None
    rates = [c["train"]["events_per_second"] for c in copies] if ok else []
    score = sum(rates) if ok else None
    trains = [c["train"] for c in copies] if ok else []
    all_windows = [w["events_per_second"] for c in copies for w in c["windows"]]
    cfg = ctx.config
    flops = _sum(t["flops_per_second"] for t in trains)  # None on a failed run
    throughput = {
        "unit": "events/s",
        "train": score,
        "validation": _sum(c["validation"]["events_per_second"] for c in copies if c["validation"])
        if ok and any(c["validation"] for c in copies)
        else None,
        "real_elements_per_second": _sum(t["real_elements_per_second"] for t in trains),
        "padded_elements_per_second": _sum(t["padded_elements_per_second"] for t in trains),
        "flops_per_second": flops,
        # Its share of the devices' peak at the precision that ran (docs/training.md).
        "model_flops_utilisation": run_utilisation(copies, cfg["train"], flops).to_dict(),
        "windows": stats(all_windows) if ok else None,
        # How far to trust the score, from the same windows (hepbench.mlpf.train.throughput.stability).
        **(stability([c["windows"] for c in copies]) if ok else dict.fromkeys(_STABILITY_KEYS)),
    }
    # Every process's counters (copy 0 / local rank 0: the node's packages; each copy: its GPUs),
    # against every copy's timed events: package energy is never split between copies.
    energy = energy_block(
        [s for c in copies for s in c.get("energy_sources", [])], sum(t["events"] for t in trains) if ok else None
    )
    scores = {"train": score} if ok else None
    if ok and energy["events_per_joule"] is not None:
        scores["events_per_joule"] = energy["events_per_joule"]
    return build_summary(
        BMK,
        RunInfo(
            copies=len(copies),
            threads_per_copy=ctx.benchmark["threads_per_copy"],
            events_per_thread=ctx.benchmark["events_per_window"],
            extra_arguments=ctx.extra_arguments,
            extras={"backend": ctx.backend["name"]},
        ),
        failure=None if ok else (ctx.log or _failure_log(copies)),
        scores=scores,
        stats=stats(rates) if ok else None,
        fields={
            "throughput": throughput,
            "copies": copies,
            "benchmark": ctx.benchmark,
            "config": cfg,
            "backend": ctx.backend,
            "precision": cfg["train"]["precision"],
            "fp32_matmul": cfg["train"]["fp32_matmul"],
            "jit_compile": cfg["train"]["jit_compile"],
            "dataset": ctx.dataset,
            "model": ctx.model,
            "energy": energy,
            # The arithmetic checked before the clock (hepbench.mlpf.train.numerics), or why it was not.
            "numerics": ctx.numerics or not_run(arithmetic(cfg["train"]["precision"], cfg["train"]["fp32_matmul"])),
        },
        bmkdata_checksum=ctx.dataset["checksum"],
        software=ctx.software,
        host=ctx.host,
        timing=ctx.timing,
        command=ctx.command,
        app_extra={"devices": _devices(copies)},
    )


def write_report(report: dict, results_dir: Path) -> Path:
    """Validate, then write the summary, `version.json` (= app) and `inputs.log`, each atomically."""
    return write_summary(
        report,
        results_dir,
        BMK,
        source="the report of this run",
        inputs_extra=f"DEVICE={report['report']['benchmark']['device']}\n",
    )


def score_line(report: dict) -> str:
    """The line `hepbench run` ends with: the score, ± the half-width of its 95 % confidence interval
    in per cent (left out when there is none), and what ran; or why the run failed."""
    r = report["report"]
    if r["status"] != "ok":
        return f"{WORKLOAD}: FAILED: {r['log']}"
    n = report["run_info"]["copies"]
    if r["benchmark"].get("strategy") in ("horovod", "ddp"):
        kind = "Horovod" if r["benchmark"]["strategy"] == "horovod" else "DDP"
        what = f"{n} {kind} rank{'' if n == 1 else 's'}"
    elif r["benchmark"].get("strategy") == "mirrored":
        what = f"1 process, {len(report['app']['devices'])} mirrored replicas"
    else:
        what = f"{n} cop{'y' if n == 1 else 'ies'}"
    interval = r["throughput"].get("confidence_interval")
    spread = f" ± {interval['half_width_percent']:.1f} %" if interval else ""  # no interval: fewer than 2 windows
    return (
        f"{WORKLOAD} train score: {r['wl-scores']['train']:.4g} events/s{spread} "
        f"({what}, {r['benchmark']['device']}, {r['precision']}, {r['backend']['name']})"
    )
