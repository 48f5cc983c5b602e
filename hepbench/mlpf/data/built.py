"""Where the built `delphes_pf` data set is by default, and what it holds, read from its JSON
files without TensorFlow.

The benchmark's coordinating process checks and describes the data set before it starts the
copies; importing TensorFlow there just for that would cost seconds and memory.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from hepbench.core.errors import DataFormatError

DATASET_NAME = "delphes_pf"
DATASET_VERSION = "1.1.0"
INFO_FILE = "dataset_info.json"  # TFDS writes it last: its presence means a complete build
METADATA_FILE = "metadata.json"  # the builder's provenance (source files and their checksum)
DEFAULT_DATA_DIR = "work/tfds-s0"  # where `make data` builds the default subset
DATA_DIR_ENV = "HEPBENCH_DATA_DIR"  # the container points this at its embedded subset


def default_data_dir() -> Path:
    """$HEPBENCH_DATA_DIR, else work/tfds-s0 (the default of every command's --data-dir)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def built_dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / DATASET_NAME / DATASET_VERSION


def require_built(data_dir: str | os.PathLike) -> Path:
    """The version directory of the data set built under `data_dir`, or a clear error."""
    where = built_dir(data_dir)
    if not (where / INFO_FILE).is_file():
        raise DataFormatError(
            f"{data_dir}: no {DATASET_NAME} {DATASET_VERSION} data set built there "
            f"(expected {where}); run `hepbench data build` (or `make data`) first"
        )
    return where


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataFormatError(f"{path}: cannot read the data set description ({e})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object")
    return data


def describe_built(data_dir: str | os.PathLike) -> dict:
    """name, version, synthetic, checksum (of the source files), events per split."""
    where = require_built(data_dir)
    info = _read_json(where / INFO_FILE)
    meta = _read_json(where / METADATA_FILE)
    counts = {
        split.get("name"): sum(int(n) for n in split.get("shardLengths", []))
        for split in info.get("splits", [])
    }
    checksum = meta.get("source_checksum")
    if not isinstance(checksum, str):
        raise DataFormatError(f"{where / METADATA_FILE}: no source_checksum; rebuild the data set")
    return {
        "name": DATASET_NAME,
        "version": DATASET_VERSION,
        "synthetic": bool(meta.get("synthetic")),
        "checksum": checksum,
        "train_events": counts.get("train", 0),
        "test_events": counts.get("test", 0),
    }
