"""Writing result files: atomically (a failed or interrupted write never leaves a partial file),
JSON that is really JSON (no NaN), and the check that a directory can be written before work starts."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from hepbench.core.errors import UsageError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data, *, indent: int = 2) -> None:
    """`data` as indented JSON plus a newline, atomically; ValueError (nothing written) on NaN or infinity,
    which Python's json would write but other readers reject."""
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=indent, allow_nan=False)
        f.write("\n")


def check_writable_dir(directory: str | os.PathLike, what: str) -> None:
    """Create `directory` if needed and write a file in it; UsageError naming `what` if that fails."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise UsageError(f"{what} {directory} is not writable: {e.strerror or e}") from None
