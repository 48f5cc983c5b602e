"""The element-count table of a built data set: every event's element count, per split, known
without decoding a record.

The input pipeline plans batches from it before it reads anything: length bucketing
(hepbench.mlpf.data.bucketing) and the shapes a training loop will see (`Batches.shapes`).
`element_counts.json` in the version directory, written at the end of the build:

    {"source_checksum": "<metadata.json's>", "splits": {"train": [n_0, n_1, ...], "test": [...]}}

n_k is the stored element count of record k as the split's data source numbers them (before the
pipeline's truncation to max_elements). The counts are read back from the built split, not taken
from the generator, so they follow whatever order TFDS wrote the records in. The checksum ties the
table to its build: a table copied from another build is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from hepbench.core.errors import DataFormatError
from hepbench.core.files import write_json
from hepbench.mlpf.data.built import INFO_FILE, METADATA_FILE

COUNTS_FILE = "element_counts.json"


def _rebuild_hint(version_dir: Path) -> str:
    data_dir = version_dir.parent.parent
    return (
        f"build the data set again (`hepbench data build --manual-dir DIR --data-dir {data_dir}`, "
        "or `make data`): a build writes the table, and adds it to an earlier build of the same files"
    )


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(f"{path}: missing; {_rebuild_hint(path.parent)}") from None
    except (OSError, ValueError) as e:
        raise DataFormatError(f"{path}: cannot be read ({e}); {_rebuild_hint(path.parent)}") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object; {_rebuild_hint(path.parent)}")
    return data


def _split_sizes(version_dir: Path) -> dict[str, int]:
    """Events per split, as TFDS recorded them in dataset_info.json."""
    info = _json(version_dir / INFO_FILE)
    return {s.get("name"): sum(int(n) for n in s.get("shardLengths", [])) for s in info.get("splits", [])}


def write_element_counts(version_dir: str | os.PathLike) -> Path:
    """Read every split of the build in `version_dir` back and write its element-count table
    (atomically); returns the table's path. Costs one decode of every record (about 2 ms each)."""
    version_dir = Path(version_dir)
    builder = tfds.builder_from_directory(os.fspath(version_dir))
    splits = {}
    for split in sorted(builder.info.splits.keys()):
        records = builder.as_data_source(split)
        splits[split] = [int(records[k]["X"].shape[0]) for k in range(len(records))]
    checksum = _json(version_dir / METADATA_FILE).get("source_checksum")
    path = version_dir / COUNTS_FILE
    write_json(path, {"source_checksum": checksum, "splits": splits}, indent=None)
    return path


def read_element_counts(version_dir: str | os.PathLike, split: str) -> np.ndarray:
    """The stored element count of every record of `split` (int64, indexed by record), or a
    DataFormatError naming the table when it is missing, unreadable or not this build's."""
    version_dir = Path(version_dir)
    path = version_dir / COUNTS_FILE
    table = _json(path)
    checksum = _json(version_dir / METADATA_FILE).get("source_checksum")
    if table.get("source_checksum") != checksum:
        raise DataFormatError(
            f"{path}: written for another build (source checksum "
            f"{table.get('source_checksum')}, this build's {checksum}); {_rebuild_hint(version_dir)}"
        )
    splits = table.get("splits")
    counts = splits.get(split) if isinstance(splits, dict) else None
    if not isinstance(counts, list) or not all(type(n) is int and n >= 0 for n in counts):
        raise DataFormatError(f"{path}: no element counts for split {split!r}; {_rebuild_hint(version_dir)}")
    expected = _split_sizes(version_dir).get(split)
    if len(counts) != expected:
        raise DataFormatError(
            f"{path}: {len(counts)} element counts for split {split!r}, which has "
            f"{expected} events; {_rebuild_hint(version_dir)}"
        )
    return np.array(counts, np.int64)


def has_element_counts(version_dir: str | os.PathLike) -> bool:
    """Whether the build in `version_dir` has a valid element-count table for every split."""
    try:
        for split in _split_sizes(Path(version_dir)):
            read_element_counts(version_dir, split)
    except DataFormatError:
        return False
    return True
