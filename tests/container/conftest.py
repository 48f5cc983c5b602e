"""The driver fixture: entrypoint.sh with a stand-in `hepbench` that prints what it was given; and
the HEP Benchmark Suite's venv (`suite_bin`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.container.clients import suite_bin as make_suite_bin

ENTRYPOINT = Path(__file__).resolve().parents[2] / "entrypoint.sh"
FAKE = """#!/usr/bin/env python3
import json, os, sys
keys = ("PATH", "HOME", "HEPBENCH_DATA_DIR", "HEPBENCH_EXTRA_ARGUMENTS", "TF_CPP_MIN_LOG_LEVEL", "MPLCONFIGDIR")
print(json.dumps({"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in keys}}))
"""


@pytest.fixture
def driver(tmp_path):
    fake = tmp_path / "fake-hepbench"
    fake.write_text(FAKE)
    fake.chmod(0o755)

    def run(*args, env=None):
        # A cleaned environment, as Apptainer's --cleanenv gives: the driver must set what it needs.
        base = {"HEPBENCH_BIN": str(fake), "HEPBENCH_HOME": str(tmp_path / "opt"), "TMPDIR": str(tmp_path)}
        return subprocess.run(
            ["/bin/bash", str(ENTRYPOINT), *args], capture_output=True, text=True, env={**base, **(env or {})}
        )

    return run


@pytest.fixture(scope="session")
def suite_bin() -> Path:
    """The bin folder of the cached venv with the HEP Benchmark Suite 3.1 (`bmkrun`) and hep-score
    1.5 (tests/container/clients.py)."""
    return make_suite_bin()
