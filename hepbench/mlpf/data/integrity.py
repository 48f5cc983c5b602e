"""The built data set's checksums: recorded once, when it is built, and verified before every timed run.

`record_checksums` writes `checksums.json` into the version directory (delphes_pf/1.1.0): every
other file there, with its size and SHA-256, and one combined digest over them, which the run
reports as `bmkdata_checksum`:

    {"format": 1, "algorithm": "sha256", "combined": "<hex>",
     "files": [{"name": "delphes_pf-train.array_record-00000-of-00001", "bytes": 1234, "sha256": "<hex>"}, ...]}

`verify` checks the directory against it: a file missing, added (an extra shard), truncated or
grown, or changed in content is a DataIntegrityError naming the file and saying how to rebuild.
Sizes are compared first, so a truncated or missing file is refused without reading anything.
Array_record files carry no checksum of their own that a reader checks: without this, a changed
byte inside a record is trained on unnoticed, and a truncated file fails only once training reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hepbench.core.errors import DataIntegrityError
from hepbench.core.files import write_json
from hepbench.mlpf.data.built import rebuild_hint
from hepbench.mlpf.data.sources import combine_checksums

MANIFEST_FILE = "checksums.json"
_FORMAT = 1
_MAX_LISTED = 5  # problems a message spells out before "and N more"


@dataclass(frozen=True)
class FileEntry:
    """One file of the version directory as recorded: its name relative to it (POSIX), size, SHA-256."""

    name: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]
    combined: str  # combine_checksums over (name, sha256) of every file

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def _listing(version_dir: Path) -> list[str]:
    """Every regular file under `version_dir` except the manifest, as sorted relative POSIX names."""
    names = (p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file())
    return sorted(n for n in names if n != MANIFEST_FILE)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _hash_all(version_dir: Path, names: list[str]) -> list[str]:
    """SHA-256 of each named file, in order; files in parallel threads (hashlib releases the GIL)."""
    workers = max(1, min(len(names), len(os.sched_getaffinity(0))))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda n: _sha256(version_dir / n), names))


def record_checksums(version_dir: str | os.PathLike) -> str:
    """Write `checksums.json` over every other file of `version_dir` (atomically); returns the combined digest."""
    version_dir = Path(version_dir)
    names = _listing(version_dir)
    digests = _hash_all(version_dir, names)
    files = [FileEntry(n, (version_dir / n).stat().st_size, d) for n, d in zip(names, digests)]
    combined = combine_checksums((f.name, f.sha256) for f in files)
    write_json(
        version_dir / MANIFEST_FILE,
        {
            "format": _FORMAT,
            "algorithm": "sha256",
            "combined": combined,
            "files": [{"name": f.name, "bytes": f.bytes, "sha256": f.sha256} for f in files],
        },
    )
    return combined


def _refuse(version_dir: Path, problems: list[str]) -> DataIntegrityError:
    listed = "; ".join(problems[:_MAX_LISTED])
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return DataIntegrityError(
        f"the data set in {version_dir} is not the one that was built: {listed}{more}. "
        f"{rebuild_hint(version_dir.parent.parent)}"
    )


def read_manifest(version_dir: str | os.PathLike) -> Manifest:
    """The recorded checksums of `version_dir`; a DataIntegrityError when there are none (a data set
    built by an older hepbench) or when the manifest is unreadable or does not add up."""
    version_dir = Path(version_dir)
    path = version_dir / MANIFEST_FILE
    if not path.is_file():
        raise DataIntegrityError(
            f"{path}: missing: the data set in {version_dir} has no recorded checksums "
            f"(built by an older hepbench, or the file was removed), so it cannot be "
            f"verified. {rebuild_hint(version_dir.parent.parent)}"
        )
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _FORMAT or data.get("algorithm") != "sha256":
            raise ValueError(
                f"format {data.get('format')!r}, algorithm {data.get('algorithm')!r}; "
                f"this hepbench reads format {_FORMAT}, sha256"
            )
        files = tuple(FileEntry(str(f["name"]), int(f["bytes"]), str(f["sha256"])) for f in data["files"])
        combined = str(data["combined"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise _refuse(version_dir, [f"{path}: unreadable ({type(e).__name__}: {e})"]) from None
    if combine_checksums((f.name, f.sha256) for f in files) != combined:
        raise _refuse(version_dir, [f"{path}: its combined digest does not match its file list (edited)"])
    return Manifest(files, combined)


def verify(version_dir: str | os.PathLike) -> str:
    """Re-hash every file `checksums.json` lists and compare; returns the combined digest, or raises a
    DataIntegrityError naming each file that is missing, unlisted, of another size or changed."""
    version_dir = Path(version_dir)
    manifest = read_manifest(version_dir)
    recorded = {f.name: f for f in manifest.files}
    present = set(_listing(version_dir))
    problems = [
        f"{version_dir / n}: not in {MANIFEST_FILE} (a file added after the build)"
        for n in sorted(present - recorded.keys())
    ]
    for f in manifest.files:
        path = version_dir / f.name
        if f.name not in present:
            problems.append(f"{path}: missing ({f.bytes} bytes when built)")
        elif (size := path.stat().st_size) != f.bytes:
            what = "truncated" if size < f.bytes else "size changed"
            problems.append(f"{path}: {what}: {size} bytes, {f.bytes} when built")
    if problems:  # found without reading a byte of data
        raise _refuse(version_dir, problems)
    digests = _hash_all(version_dir, [f.name for f in manifest.files])
    problems = [
        f"{version_dir / f.name}: content changed (sha256 {d}, {f.sha256} when built)"
        for f, d in zip(manifest.files, digests)
        if d != f.sha256
    ]
    if problems:
        raise _refuse(version_dir, problems)
    return manifest.combined
