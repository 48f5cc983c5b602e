"""The tf.data input pipeline: built `delphes_pf` events → padded batches for the MLPF model.

read (file order) → shard per worker → cache → shuffle → truncate / pick target / pad to bins →
padded_batch → prefetch. Each batch is a dict:

    X               (B, L, 12) float32   zero rows beyond an event's elements
    y               (B, L, 7)  float32   ygen or ycand (DataConfig.target), zero rows likewise
    n_elements      (B,) int32           real elements per event, after truncation
    n_elements_orig (B,) int32           elements per event as stored

L is a multiple of `bin_size` (the model's graph-layer bin size: the layers split the elements
into equal bins);
with pad_to_max it is the same for every batch, so a tf.function traces once.

Throughput must count real events (`events_in_batch`), never padded rows or nominal batch sizes:
the last batch may be smaller, and padding is work the model does but not work the user asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds

from hepbench.mlpf.config import DataConfig
from hepbench.mlpf.data.tfds_builder import load_builder
from hepbench.core.errors import UsageError


def _round_up(n, multiple):
    return (n + multiple - 1) // multiple * multiple


def padded_length(cfg: DataConfig, bin_size: int) -> int | None:
    """The fixed element axis length with pad_to_max, else None (it varies per batch)."""
    return _round_up(cfg.max_elements, bin_size) if cfg.pad_to_max else None


def _builder(builder_or_data_dir):
    if isinstance(builder_or_data_dir, (str, os.PathLike)):
        return load_builder(builder_or_data_dir)
    return builder_or_data_dir


def _cache_path(cfg: DataConfig, builder, split: str, num_workers: int, worker_index: int) -> str:
    # tf.data reuses whatever cache file has the given prefix, so the name must say what it holds:
    # another split, another shard or a rebuilt data set must never read this cache.
    checksum = str(builder.info.metadata.get("source_checksum", "unknown"))[:16]
    return f"{cfg.cache}.{split}.{worker_index}of{num_workers}.{checksum}"


def _prepare_fn(cfg: DataConfig, bin_size: int):
    fixed = padded_length(cfg, bin_size)
    target = "ygen" if cfg.target == "gen" else "ycand"

    def prepare(event):
        X, y = event["X"], event[target]
        n_orig = tf.shape(X)[0]
        # Longer events are truncated, as upstream did: the model's cost grows with the length.
        X, y = X[: cfg.max_elements], y[: cfg.max_elements]
        n = tf.shape(X)[0]
        # At least one bin, so that an empty event still gives the model a valid (all-padding) bin.
        length = fixed if fixed is not None else tf.maximum(_round_up(n, bin_size), bin_size)
        X = tf.pad(X, [[0, length - n], [0, 0]])
        y = tf.pad(y, [[0, length - n], [0, 0]])
        if fixed is not None:  # make the length static, so batches have a fully known shape
            X = tf.ensure_shape(X, (fixed, X.shape[-1]))
            y = tf.ensure_shape(y, (fixed, y.shape[-1]))
        return {"X": X, "y": y, "n_elements": n, "n_elements_orig": n_orig}

    return prepare


def make_dataset(
    builder_or_data_dir,
    split: str,
    cfg: DataConfig,
    *,
    bin_size: int,
    num_workers: int = 1,
    worker_index: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of one split for one worker (of `num_workers`), as described in the module docstring.

    `builder_or_data_dir`: a built DelphesPf builder or the data directory it was built into.
    `bin_size`: the model's bin size (ModelConfig.bin_size); every event is padded to a multiple.
    Workers get disjoint shards (event k goes to worker k % num_workers) that together cover the
    split. With drop_remainder the batch size is static too.
    """
    builder = _builder(builder_or_data_dir)
    splits = sorted(builder.info.splits.keys())
    if split not in splits:
        available = ", ".join(splits) or "none"
        raise UsageError(f"split {split!r} is not in the data set; available splits: {available}")
    if bin_size <= 0:
        raise UsageError(f"bin_size must be positive, not {bin_size}")
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise UsageError(
            f"worker index must satisfy 0 <= index < num_workers, got {worker_index} of {num_workers}"
        )

    # Deterministic read: files in order, and no TFDS auto-cache (the cache is cfg.cache's choice).
    read_config = tfds.ReadConfig(try_autocache=False)
    ds = builder.as_dataset(split=split, shuffle_files=False, read_config=read_config)
    if num_workers > 1:
        ds = ds.shard(num_workers, worker_index)

    # Cache the stored (unpadded) events: padding is cheap to redo and would multiply the memory.
    if cfg.cache == "memory":
        ds = ds.cache()
    elif cfg.cache != "none":
        path = _cache_path(cfg, builder, split, num_workers, worker_index)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ds = ds.cache(path)

    if cfg.shuffle_buffer > 0:
        ds = ds.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)

    ds = ds.map(_prepare_fn(cfg, bin_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # Every event is already a multiple of bin_size long, so the batch maximum is one as well.
    ds = ds.padded_batch(cfg.batch_size, drop_remainder=drop_remainder)
    if cfg.prefetch != 0:
        ds = ds.prefetch(tf.data.AUTOTUNE if cfg.prefetch == -1 else cfg.prefetch)
    return ds


def events_in_batch(batch) -> tf.Tensor:
    """Real events in a batch (int32): the number to count for throughput."""
    return tf.shape(batch["n_elements"])[0]


def element_counts(batch) -> tuple[tf.Tensor, tf.Tensor]:
    """(real elements, padded element slots B*L) of a batch, as int64 tensors.

    real / padded is the fraction of the model's work that was spent on actual detector elements.
    """
    real = tf.reduce_sum(tf.cast(batch["n_elements"], tf.int64))
    shape = tf.shape(batch["X"], out_type=tf.int64)
    return real, shape[0] * shape[1]
