"""The HEPscore envelope every workload's summary shares, its validation and its files.

HEPscore reads `app`, `run_info` and `report["wl-scores"]` (numbers) of the summary a workload writes
and copies the rest of `report` into its own report (docs/hepscore-contract.md). Every workload
builds that summary with `build_summary`, ok or failed alike, and writes it with `write_summary`:

    {"app": {name, version, description, containment, bmk_checksum, bmkdata_checksum, ...extras},
     "run_info": {copies, threads_per_copy, events_per_thread, extra_arguments, ...extras},
     "report": {wl-scores, wl-stats, log, status, definition, ...the workload's fields,
                software, host, timing, command}}

`run_guarded` is the shape of a workload run: whatever fails, there is still a summary to write.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hepbench.core.errors import HepbenchError
from hepbench.core.files import atomic_open, write_json
from hepbench.core.hostinfo import bmk_checksum, containment
from hepbench.core.schema import validate_report

INPUTS_FILE = "inputs.log"
VERSION_FILE = "version.json"


@dataclass(frozen=True)
class Workload:
    """What names a workload in its summary and where the summary goes."""

    name: str  # app.name, the benchmark's name in HEPscore's config, e.g. "mlpf-bmk"
    version: str  # app.version: hepbench's
    description: str  # app.description
    definition: str  # report.definition: how the scores are computed
    summary_file: str  # the config's results_file, e.g. "mlpf_summary.json"
    schema: str  # its JSON Schema, a file in hepbench/results_schema/


@dataclass(frozen=True)
class RunInfo:
    """HEPscore's run_info block (events_per_thread is each workload's own unit of work)."""

    copies: int
    threads_per_copy: int
    events_per_thread: int
    extra_arguments: str = ""
    # A workload's own entries after HEPscore's four (mlpf-bmk: its backend); its schema allows them.
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "copies": self.copies,
            "threads_per_copy": self.threads_per_copy,
            "events_per_thread": self.events_per_thread,
            "extra_arguments": self.extra_arguments,
            **self.extras,
        }


def build_summary(
    workload: Workload,
    run_info: RunInfo,
    *,
    failure: str | None,
    scores: dict | None,
    stats: dict | None,
    fields: dict,
    bmkdata_checksum: str | None,
    software: dict,
    host: dict,
    timing: dict,
    command: list[str] | tuple[str, ...],
    app_extra: dict | None = None,
) -> dict:
    """The summary of one run: ok when `failure` is None (then `scores` and `stats` are its
    wl-scores and wl-stats), otherwise failed with `failure` as its log and empty scores and stats.

    `fields` are the workload's own report entries, placed after `definition`; `app_extra` its own
    app entries (e.g. the devices of an accelerator workload), placed after the checksums."""
    ok = failure is None
    if ok and (scores is None or stats is None):
        raise ValueError("an ok summary needs its scores and stats")
    return {
        "app": {
            "name": workload.name,
            "version": workload.version,
            "description": workload.description,
            "containment": containment(),
            "bmk_checksum": bmk_checksum(),
            "bmkdata_checksum": bmkdata_checksum,
            **(app_extra or {}),
        },
        "run_info": run_info.to_dict(),
        "report": {
            "wl-scores": scores if ok else {},
            "wl-stats": stats if ok else {},
            "log": "ok" if ok else failure,
            "status": "ok" if ok else "failed",
            "definition": workload.definition,
            **fields,
            "software": software,
            "host": host,
            "timing": timing,
            "command": list(command),
        },
    }


def write_summary(
    summary: dict, results_dir: str | Path, workload: Workload, *, source: str | None = None, inputs_extra: str = ""
) -> Path:
    """Validate `summary` against the workload's schema (ReportError, nothing written, if it does not
    match), then write inputs.log, version.json (= app) and the summary into `results_dir`, each
    atomically; the summary last, so its presence means the others are complete. `inputs_extra`:
    lines added to inputs.log after HEPscore's four. Returns the summary's path."""
    validate_report(summary, workload.schema, source=source or f"the {workload.name} summary")
    results_dir = Path(results_dir)
    info = summary["run_info"]
    with atomic_open(results_dir / INPUTS_FILE, "w") as f:  # as the HEP-workloads write beside the summary
        f.write(
            f"NCOPIES={info['copies']}\nNTHREADS={info['threads_per_copy']}\n"
            f"NEVENTS_THREAD={info['events_per_thread']}\nEXTRA_ARGS={info['extra_arguments']}\n{inputs_extra}"
        )
    write_json(results_dir / VERSION_FILE, summary["app"])
    path = results_dir / workload.summary_file
    write_json(path, summary)
    return path


class Guarded(NamedTuple):
    """What `run_guarded` returns: the work's value, or None with the failure and its exit code."""

    value: Any
    failure: str | None
    exit_code: int


def run_guarded(work: Callable[[], Any]) -> Guarded:
    """Call `work`; any failure becomes a message and an exit code instead of an exception, so that a
    failed summary can still be written for HEPscore. A HepbenchError's message is shown as is; any
    other exception is named and its traceback printed to stderr. KeyboardInterrupt passes through."""
    try:
        return Guarded(work(), None, 0)
    except HepbenchError as e:
        return Guarded(None, str(e) or type(e).__name__, e.exit_code)
    except Exception as e:  # noqa: BLE001 - any failure must still leave a report for HEPscore
        traceback.print_exc()
        return Guarded(None, f"{type(e).__name__}: {e}", 1)
