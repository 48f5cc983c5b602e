"""A Python subprocess in which TensorFlow cannot be imported: a machine with only JAX or PyTorch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture(scope="session")
def without_tensorflow(tmp_path_factory):
    """without_tensorflow(code) runs `code` in a fresh interpreter whose first PYTHONPATH entry
    holds a `tensorflow` package that raises ImportError; returns the CompletedProcess."""
    shadow = tmp_path_factory.mktemp("no_tensorflow")
    (shadow / "tensorflow").mkdir()
    (shadow / "tensorflow" / "__init__.py").write_text('raise ImportError("tensorflow is not importable here")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(shadow), os.environ.get("PYTHONPATH")) if p)}
    prelude = "import sys\n"

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    check = run("try:\n    import tensorflow\nexcept ImportError:\n    print('blocked')\n")
    assert check.stdout.strip() == "blocked", check.stderr  # the shadow package works
    return run
