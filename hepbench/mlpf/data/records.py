"""Random access to one split of the built `delphes_pf` data set, without TensorFlow.

TFDS's data source over the split's array_record files: `len(records)` events, `records[k]` the
k-th in file order as {"X": (n, 12), "ygen": (n, 7), "ycand": (n, 7)} float32 NumPy arrays. The
read-only builder (`tfds.builder_from_directory`) restores the data set from its JSON files, so
this path needs neither TensorFlow nor the DelphesPf builder class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow_datasets as tfds

from hepbench.core.errors import UsageError
from hepbench.mlpf.data.built import require_built


def open_builder(data) -> tfds.core.DatasetBuilder:
    """A builder of the built data set: `data` is its data directory or already a builder."""
    if isinstance(data, (str, os.PathLike)):
        return tfds.builder_from_directory(os.fspath(require_built(data)))
    return data


def open_split(data, split: str) -> Sequence[dict]:
    """The events of `split` (train or test) in file order, read on access (see the module docstring)."""
    builder = open_builder(data)
    splits = sorted(builder.info.splits.keys())
    if split not in splits:
        available = ", ".join(splits) or "none"
        raise UsageError(f"split {split!r} is not in the data set; available splits: {available}")
    return builder.as_data_source(split)
