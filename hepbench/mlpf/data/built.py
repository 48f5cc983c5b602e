"""Where the built `delphes_pf` data set is by default, whether it is one this version reads
(array_record), and what it holds, read from its JSON files without TFDS or TensorFlow.

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
FILE_FORMAT = "array_record"  # random access without TensorFlow (TFDS data sources)
METADATA_FILE = "metadata.json"  # the builder's provenance (source files and their checksum)
DEFAULT_DATA_DIR = "work/tfds-s0"  # where `make data` builds the default subset
DATA_DIR_ENV = "HEPBENCH_DATA_DIR"  # the container points this at its embedded subset


def default_data_dir() -> Path:
    """$HEPBENCH_DATA_DIR, else work/tfds-s0 (the default of every command's --data-dir)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def built_dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / DATASET_NAME / DATASET_VERSION


def rebuild_hint(data_dir: str | os.PathLike) -> str:
    """How to replace the data set under `data_dir` with a fresh build (the end of a data error's message)."""
    return (
        f"Remove {data_dir} and build it again (`hepbench data build --manual-dir DIR --data-dir {data_dir}`, "
        f"or `make data` for the default subset)"
    )


def require_built(data_dir: str | os.PathLike) -> Path:
    """The version directory of the data set built under `data_dir`, or a clear error (none built
    there, or one built in another file format)."""
    where = built_dir(data_dir)
    if not (where / INFO_FILE).is_file():
        raise DataFormatError(
            f"{data_dir}: no {DATASET_NAME} {DATASET_VERSION} data set built there "
            f"(expected {where}); run `hepbench data build` (or `make data`) first"
        )
    # TFDS leaves the field out for its default format, TFRecord: what older hepbench versions built.
    found = _read_json(where / INFO_FILE).get("fileFormat") or "tfrecord"
    if found != FILE_FORMAT:
        raise DataFormatError(
            f"{data_dir}: the {DATASET_NAME} data set there is in the {found} format of an older hepbench; "
            f"this one reads {FILE_FORMAT}. {rebuild_hint(data_dir)}"
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
    """name, version, synthetic, checksum, source_checksum, events per split, from the JSON files alone.

    `checksum` is None here: it is the data set's combined digest once `integrity.verify` has
    checked every file against it (the run does that before timing); `source_checksum` is that of
    the event files it was built from (metadata.json)."""
    where = require_built(data_dir)
    info = _read_json(where / INFO_FILE)
    meta = _read_json(where / METADATA_FILE)
    counts = {split.get("name"): sum(int(n) for n in split.get("shardLengths", [])) for split in info.get("splits", [])}
    checksum = meta.get("source_checksum")
    if not isinstance(checksum, str):
        raise DataFormatError(f"{where / METADATA_FILE}: no source_checksum; rebuild the data set")
    return {
        "name": DATASET_NAME,
        "version": DATASET_VERSION,
        "synthetic": bool(meta.get("synthetic")),
        "checksum": None,
        "source_checksum": checksum,
        "train_events": counts.get("train", 0),
        "test_events": counts.get("test", 0),
    }
