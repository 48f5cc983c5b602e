"""The data files of a directory, by split and in order, and their checksums (`bmkdata_checksum`).

No TensorFlow here: `data info` and the builder share this without importing TFDS.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hepbench.core.errors import DataFormatError
from hepbench.mlpf.data.format import parse_name

SPLIT_OF_PROCESS = {"ttbar": "train", "qcd": "test"}


@dataclass(frozen=True)
class Sources:
    splits: dict[str, list[Path]]  # split name -> files in dataset order; absent split: no files
    synthetic: bool

    @property
    def files(self) -> list[Path]:
        return [p for paths in self.splits.values() for p in paths]


def list_sources(directory: str | os.PathLike) -> Sources:
    """The data files of a directory, by split and in order; other files are ignored."""
    d = Path(directory)
    if not d.is_dir():
        raise DataFormatError(f"{d}: no such directory (it should hold the .pkl.bz2 data files)")
    found = [(parsed, p) for p in d.iterdir() if p.is_file() and (parsed := parse_name(p.name))]
    if not found:
        raise DataFormatError(
            f"{d}: no data files (tev14_pythia8_{{ttbar|qcd}}_J_I.pkl.bz2, or synth_... from "
            "`hepbench data synth`) in this directory"
        )
    kinds = {parsed.synthetic for parsed, _ in found}
    if len(kinds) > 1:
        # A result must say which data it measured; a mix would pass synthetic events for real ones.
        raise DataFormatError(
            f"{d}: holds both synthetic (synth_*) and published files; a benchmark data set must be "
            "one or the other, so move one kind to another directory"
        )
    splits: dict[str, list[Path]] = {}
    for parsed, p in sorted(found, key=lambda fp: (fp[0].process != "ttbar", fp[0].sort_key, fp[1].name)):
        splits.setdefault(SPLIT_OF_PROCESS[parsed.process], []).append(p)
    return Sources(splits, kinds.pop())


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in 1 MiB chunks (data files are ~50 MB each)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def combine_checksums(name_sha: Iterable[tuple[str, str]]) -> str:
    """sha256 over the sorted `name:sha256` lines: independent of directory and listing order."""
    lines = sorted(f"{name}:{sha}\n" for name, sha in name_sha)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def source_checksum(paths: Iterable[str | os.PathLike]) -> str:
    """One checksum for a set of data files: their names and contents, not where they lie."""
    return combine_checksums((Path(p).name, file_sha256(p)) for p in paths)
