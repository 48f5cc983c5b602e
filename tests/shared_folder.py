"""The project's shared folder (third-party clients, set-up tools): `shared` beside the checkout, as
CI lays it out, or $HEPBENCH_SHARED.

A test that needs something from it and does not find it skips on a developer's machine (a clone in
/tmp has no `shared` beside it; the skip's reason, printed by `make test`'s -rs, says how to point
at it), but fails under CI=true: there a missing folder means conformance tests silently not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEPBENCH_SHARED", ROOT.parent / "shared"))


def need_shared(path: Path, what: str) -> Path:
    """`path` (under SHARED) if it exists; otherwise a skip, or under CI=true a failure, naming `what`."""
    if path.exists():
        return path
    message = f"{what} not found at {path}: set HEPBENCH_SHARED to the project's shared folder (docs/development.md)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(message)
