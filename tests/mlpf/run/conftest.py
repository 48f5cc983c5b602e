"""`hepbench run` in its own process, as a user runs it (the data set and config: tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Without $KERAS_BACKEND: a run's backend is what its test says (the default: tensorflow).
ENV = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="session")
def hepbench_run():
    """hepbench_run(*args, env=None, wrap=None, **kw): the CompletedProcess of `python -m hepbench run ARGS`
    (text output captured; `env` entries added to the test environment; `wrap` turns the command into
    the one to run, e.g. tests/unprivileged.py's; kw go to subprocess.run)."""

    def run(*args, env: dict | None = None, wrap=None, **kw) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "hepbench", "run", *map(str, args)]
        return subprocess.run(
            wrap(cmd) if wrap else cmd, capture_output=True, text=True, env={**ENV, **(env or {})}, **kw
        )

    return run
