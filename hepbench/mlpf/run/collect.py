"""The `collect` phase: the copies' entries and what the run knows about itself, as one report.

Shared by benchmark.py and horovod.py (a Horovod rank 0 also builds failure reports while the job
runs). The report's layout and validation are hepbench.mlpf.report.summary's.
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

from hepbench.core import devices
from hepbench.core.hostinfo import command_line, distribution_version, host_info
from hepbench.core.timestamps import now_iso
from hepbench.mlpf.config import config_to_dict
from hepbench.mlpf.engines.backends import backend
from hepbench.mlpf.model.flops import training_flops
from hepbench.mlpf.report.summary import RunContext, build_report, software_versions
from hepbench.mlpf.run.copy import CopySpec
from hepbench.mlpf.run.plan import Outcome, Plan, RunOptions


def requested_backend(name: str) -> dict:
    """The report's backend block of a run whose engine never said how it runs (it failed first):
    the requested backend, its version as the engine would give it, and no compile mode."""
    facts = backend(name)
    version = _file_version(facts.version_file) if facts.version_file else None
    block = {
        "name": name,
        "version": version or distribution_version(*facts.distributions),
        "keras": distribution_version("keras"),
        "compile": None,
    }
    block.update({package: distribution_version(package) for package in facts.companions})
    return block


def _file_version(path: str) -> str | None:
    """__version__ from a package's file (Backend.version_file, "torch/version.py") without importing
    the package (the run failed; it may be what failed): the engine's report names the module's
    __version__, which can say more than the metadata (the CUDA build of a PyPI torch wheel)."""
    package, _, name = path.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    try:
        text = (Path(spec.origin).parent / name).read_text()
    except OSError:
        return None
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return found.group(1) if found else None


def _entry_gpus(vendor: str, entries: list[dict]) -> list[devices.Gpu]:
    """The GPUs the copies' frameworks said they trained on (each entry's device, a mirrored copy's
    replica devices), once each: the host's GPUs where no management tool answered."""
    found: dict[int, devices.Gpu] = {}
    for entry in entries:
        for device in entry.get("replica_devices") or [entry.get("device") or {}]:
            if device.get("type") == "gpu" and isinstance(device.get("index"), int):
                found.setdefault(device["index"], devices.Gpu(vendor, device["index"], device["name"]))
    return [found[i] for i in sorted(found)]


def host_gpus(first: CopySpec, entries: list[dict]) -> tuple[list[dict], dict | None]:
    """report.host's GPUs of a GPU run and their runtime: as the vendor's management tool lists them,
    else as the copies' frameworks named them; ([], None) on a CPU run, whose host block is unchanged."""
    if first.device != "gpu":
        return [], None
    vendor = devices.vendor(first.gpu_vendor) if first.gpu_vendor else devices.node_vendor()
    if vendor is None:
        return [], None
    listing = vendor.listing() or devices.Listing(_entry_gpus(vendor.name, entries), None, "framework")
    return [g.to_dict() for g in listing.gpus], listing.host_runtime(vendor.name)


def run_context(
    options: RunOptions,
    plan: Plan,
    context: dict,
    log: str | None,
    start_iso: str,
    start: float,
    entries: list[dict] | None = None,
) -> RunContext:
    """Everything the report holds besides the copies' entries (which name the GPUs they trained on
    where no management tool lists the host's)."""
    cfg, first = options.config, plan.specs[0]
    software = software_versions()
    software.update({k: v for k, v in context.get("software", {}).items() if v is not None})
    model = {
        "name": "PFNetDense",
        "trainable_parameters": None,
        "non_trainable_parameters": None,
        **context.get("model", {}),
        "training_flops_per_event_at_max": training_flops(cfg.model, cfg.data.max_elements),
    }
    return RunContext(
        benchmark={
            "device": first.device,
            "strategy": first.strategy,
            "copies": plan.copies,
            "threads_per_copy": first.threads,
            "windows": cfg.bench.windows,
            "events_per_window": first.events_per_window,
            "warmup_steps": cfg.bench.warmup_steps,
            "validation_events": first.validation_events,
            "data_dir": str(options.data_dir),
            **plan.benchmark,
        },
        config=config_to_dict(cfg),
        dataset=plan.dataset,
        model=model,
        software=software,
        backend=context.get("backend") or requested_backend(first.backend),
        host=host_info(*host_gpus(first, entries or [])),
        timing={"start": start_iso, "end": now_iso(), "wall_seconds": time.perf_counter() - start},
        command=list(options.command or command_line()),
        extra_arguments=options.extra_arguments,
        log=log,
        numerics=context.get("numerics"),
    )


def collect(options: RunOptions, plan: Plan, outcome: Outcome) -> dict | None:
    """The report of the run (None where this process does not write one: a Horovod rank > 0)."""
    if not outcome.publish:
        return None
    ctx = run_context(options, plan, outcome.context, outcome.log, outcome.start_iso, outcome.start, outcome.entries)
    return build_report(outcome.entries, ctx)
