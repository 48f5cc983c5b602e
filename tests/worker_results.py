"""Results of a test's worker processes, one JSON file each, never parsed from their output.

A worker's standard output is shared with its launcher's other ranks and with its libraries' own
output: two torchrun ranks' JSON lines once arrived as one line (`{"rank": 0, …}{"rank": 1, …}`) and
failed CI. A file per worker, written whole and renamed into place (hepbench's own atomic write),
cannot interleave, and a worker that died before writing is missing, not half-read.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from hepbench.core.files import write_json

RESULTS_DIR = "HEPBENCH_TEST_RESULTS"  # where the test tells its workers to write


def report(name: str, result) -> None:
    """In a worker: `result` as <$HEPBENCH_TEST_RESULTS>/<name>.json."""
    write_json(Path(os.environ[RESULTS_DIR]) / f"{name}.json", result)


def run_workers(cmd: list[str], *, env: dict, timeout: float, **kwargs) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs `cmd` (capturing its output for failure messages) with a fresh results folder; returns the
    process and {name: result} of every file its workers wrote."""
    with tempfile.TemporaryDirectory(prefix="hepbench-workers-") as folder:
        r = subprocess.run(
            [str(c) for c in cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**env, RESULTS_DIR: folder},
            **kwargs,
        )
        return r, read_results(Path(folder))


def read_results(folder: Path) -> dict:
    """{name: result} of every result file in `folder` (a worker's temporary files are hidden)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
