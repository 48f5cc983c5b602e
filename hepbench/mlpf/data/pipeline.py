"""The input pipeline: built `delphes_pf` events → padded NumPy batches for the MLPF model, one host
pipeline for every engine (TensorFlow, JAX, PyTorch), with no TensorFlow on its path.

read the split in file order (random access, hepbench.mlpf.data.records) → shard per worker →
cache (optional) → shuffle (optional) → bucket by padded length (optional) → truncate / pick
target / pad to bins → batch → prefetch. Which events form each batch is decided on indices
alone, from the element-count table (hepbench.mlpf.data.lengths), before any record is read.
Each batch is a dict of NumPy arrays:

    X               (B, L, 12) float32   zero rows beyond an event's elements
    y               (B, L, 7)  float32   ygen or ycand (DataConfig.target), zero rows likewise
    n_elements      (B,) int32           real elements per event, after truncation
    n_elements_orig (B,) int32           elements per event as stored

L is a multiple of `bin_size` (the model's graph-layer bin size: the layers split the elements
into equal bins): the batch's longest event rounded up, at least one bin; with pad_to_max it is
max_elements rounded up for every batch, so a compiled step sees one shape. With
data.bucket_lookahead > 0 the events of a batch are chosen to share one padded length where a
window of (1 + bucket_lookahead) batches' worth of events allows (hepbench.mlpf.data.bucketing).

Throughput must count real events (len(n_elements)), never padded rows or nominal batch sizes:
the last batch of a pass may be smaller, and padding is work the model does but not work the
user asked for.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hepbench.core.errors import DataFormatError, HepbenchError, UsageError
from hepbench.mlpf.config import DataConfig
from hepbench.mlpf.data.bucketing import bucketed, event_lengths
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES
from hepbench.mlpf.data.lengths import COUNTS_FILE, read_element_counts
from hepbench.mlpf.data.prefetch import prefetched
from hepbench.mlpf.data.records import open_builder, open_split

# Threads that build batches ahead (with prefetch), at most: reading (zstd, in C++) releases the GIL,
# but TFDS's decoding mostly holds it, so many more threads would mostly wait for one another.
MAX_READ_THREADS = 4


def _round_up(n, multiple):
    return (n + multiple - 1) // multiple * multiple


def padded_length(cfg: DataConfig, bin_size: int) -> int | None:
    """The fixed element axis length with pad_to_max, else None (it varies per batch)."""
    return _round_up(cfg.max_elements, bin_size) if cfg.pad_to_max else None


def default_read_threads() -> int:
    """Threads that build batches ahead: this process's cores (its affinity), at most MAX_READ_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_READ_THREADS, cores))


def shuffled(items: np.ndarray, buffer: int, rng: np.random.Generator) -> Iterator[int]:
    """`items` through a shuffle buffer of `buffer` slots, as tf.data's shuffle: each output is drawn
    uniformly from the buffer and replaced by the next item. buffer >= len(items): a uniform permutation."""
    slots: list[int] = []
    for item in items:
        if len(slots) < buffer:
            slots.append(int(item))
            continue
        k = int(rng.integers(len(slots)))
        yield slots[k]
        slots[k] = int(item)
    while slots:
        k = int(rng.integers(len(slots)))
        slots[k], slots[-1] = slots[-1], slots[k]
        yield slots.pop()


def element_counts(batch: dict) -> tuple[int, int]:
    """(real elements, padded element slots B*L) of a batch: real / padded is the share of the
    model's work spent on actual detector elements."""
    return int(batch["n_elements"].sum()), batch["X"].shape[0] * batch["X"].shape[1]


class Batches:
    """The batches of one split for one worker (of `num_workers`), as the module docstring says.

    `data`: the data directory the set was built into (or its TFDS builder). `bin_size`: the
    model's bin size (ModelConfig.bin_size). Workers get disjoint shards (event k goes to worker
    k % num_workers) that together cover the split. Iterating gives one pass over the shard, or
    with `repeat` endless passes; every pass is an epoch, reshuffled (with shuffle_buffer > 0)
    from `cfg.seed` and the epoch's number, so the order is the same on every run for a seed.
    With drop_remainder every batch holds batch_size events. With data.bucket_lookahead > 0
    (and not pad_to_max) each pass's events are bucketed by padded length; the element-count
    table is then required (a DataFormatError without it), as it is for `shapes()` unless
    pad_to_max. With data.cache "memory" the decoded events are kept after their first read
    (every pass of this object reuses them).
    `read_threads`: threads that build batches ahead when data.prefetch != 0 (default: this
    process's cores, at most MAX_READ_THREADS).
    """

    def __init__(
        self,
        data,
        split: str,
        cfg: DataConfig,
        *,
        bin_size: int,
        num_workers: int = 1,
        worker_index: int = 0,
        drop_remainder: bool = False,
        repeat: bool = False,
        read_threads: int | None = None,
    ):
        if bin_size <= 0:
            raise UsageError(f"bin_size must be positive, not {bin_size}")
        if num_workers < 1 or not 0 <= worker_index < num_workers:
            raise UsageError(f"worker index must satisfy 0 <= index < num_workers, got {worker_index} of {num_workers}")
        if read_threads is not None and read_threads < 1:
            raise UsageError(f"read_threads must be >= 1, not {read_threads}")
        builder = open_builder(data)
        self.records = open_split(builder, split)
        self._version_dir = Path(builder.data_dir)
        self.split, self.cfg, self.bin_size = split, cfg, bin_size
        self.indices = np.arange(worker_index, len(self.records), num_workers)  # this worker's shard
        self.drop_remainder, self.repeat = drop_remainder, repeat
        self.read_threads = read_threads or default_read_threads()
        self.fixed_length = padded_length(cfg, bin_size)
        self._target = "ygen" if cfg.target == "gen" else "ycand"
        # pad_to_max gives every batch one length already: nothing to bucket.
        self.bucketing = cfg.bucket_lookahead > 0 and self.fixed_length is None
        self._counts: np.ndarray | None = None  # stored element count per record, once needed
        if self.bucketing:
            self._element_counts()  # refuse a build without the table now, not at the first batch
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, int]] | None = {} if cfg.cache == "memory" else None
        self._passes = 0  # epochs started by this object, over all its iterations
        self._where = f"split {split!r} (worker {worker_index} of {num_workers})"

    def fill_cache(self) -> int:
        """With data.cache "memory": decode every event of this shard into the cache now, with the
        read threads (a run does it before its clock starts, so the first pass reads no records
        inside a timed window); the events decoded. Without a cache: nothing, 0."""
        if self._cache is None:
            return 0
        missing = [int(i) for i in self.indices if int(i) not in self._cache]
        with ThreadPoolExecutor(self.read_threads) as pool:
            for _ in pool.map(self._event, missing):
                pass
        return len(missing)

    def batches_per_pass(self) -> int:
        n, size = len(self.indices), self.cfg.batch_size
        return n // size if self.drop_remainder else -(-n // size)

    def __iter__(self) -> Iterator[dict]:
        cfg = self.cfg
        batches = self._index_batches(self._next_epoch)
        if cfg.prefetch == 0:
            return map(self._assemble, batches)
        depth = 2 * self.read_threads if cfg.prefetch == -1 else cfg.prefetch
        return prefetched(batches, self._assemble, depth, self.read_threads)

    def shapes(self) -> Iterator[tuple[int, int]]:
        """(events, padded length) of every batch that iterating a fresh Batches of the same
        arguments would yield, in order (endless with repeat), from indices and the element-count
        table alone: no record is read, and this object's epochs are left as they are."""
        lengths = None if self.fixed_length is not None else self._event_lengths()
        epochs = itertools.count()
        for batch in self._index_batches(lambda: next(epochs)):
            yield len(batch), self.fixed_length if lengths is None else int(lengths[batch].max())

    # -- the index stream: shard order or shuffled, bucketed or not, in batches ------------------

    def _next_epoch(self) -> int:
        epoch, self._passes = self._passes, self._passes + 1
        return epoch

    def _index_batches(self, next_epoch: Callable[[], int]) -> Iterator[list[int]]:
        if self.repeat and self.batches_per_pass() == 0:
            raise HepbenchError(
                f"{self._where}: {len(self.indices)} events make no batch of {self.cfg.batch_size}; "
                "a repeating pipeline would never yield one (use more events or a smaller data.batch_size)"
            )
        while True:
            yield from self._one_pass(next_epoch())
            if not self.repeat:
                return

    def _one_pass(self, epoch: int) -> Iterator[list[int]]:
        cfg = self.cfg
        order = iter(self.indices.tolist())
        if cfg.shuffle_buffer > 0:
            order = shuffled(self.indices, cfg.shuffle_buffer, np.random.default_rng([cfg.seed, epoch]))
        if self.bucketing:
            # The look-ahead counts batches, so that it reaches as many steps ahead whatever the batch size.
            yield from bucketed(
                order, self._event_lengths(), cfg.batch_size, cfg.bucket_lookahead * cfg.batch_size, self.drop_remainder
            )
            return
        batch: list[int] = []
        for index in order:
            batch.append(index)
            if len(batch) == cfg.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_remainder:
            yield batch

    def _element_counts(self) -> np.ndarray:
        if self._counts is None:
            self._counts = read_element_counts(self._version_dir, self.split)
        return self._counts

    def _event_lengths(self) -> np.ndarray:
        """Every record's padded length alone (what its batch's length is the maximum of)."""
        return event_lengths(self._element_counts(), self.cfg.max_elements, self.bin_size)

    # -- events and batches -----------------------------------------------------------------------

    def _event(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(X, y) of one event, truncated to max_elements, and its stored element count."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        record = self.records[index]
        X, y = record["X"], record[self._target]
        n_orig = X.shape[0]
        if X.shape[1:] != (NUM_X_FEATURES,) or y.shape != (n_orig, NUM_Y_FEATURES):
            raise HepbenchError(f"{self._where}: event {index} has X {X.shape} and y {y.shape}; rebuild the data set")
        if self._counts is not None and self._counts[index] != n_orig:  # batches were planned from the table
            raise DataFormatError(
                f"{self._version_dir / COUNTS_FILE}: event {index} of split {self.split!r} "
                f"has {n_orig} elements, the table says {self._counts[index]}; rebuild the data set"
            )
        # Longer events are truncated, as upstream did: the model's cost grows with the length.
        # A copy, so that a cached event does not keep the whole stored one alive.
        if n_orig > self.cfg.max_elements:
            X, y = X[: self.cfg.max_elements].copy(), y[: self.cfg.max_elements].copy()
        event = (X, y, n_orig)
        if self._cache is not None:
            self._cache[index] = event
        return event

    def _assemble(self, indices: list[int]) -> dict:
        events = [self._event(i) for i in indices]
        n = np.array([X.shape[0] for X, _, _ in events], np.int32)
        if self.fixed_length is not None:
            length = self.fixed_length
        else:  # at least one bin, so that an empty event still gives the model a valid (all-padding) bin
            length = max(_round_up(int(n.max()), self.bin_size), self.bin_size)
        # One zeroed array per batch, filled in place: no per-event padding and no stacking copy.
        X = np.zeros((len(events), length, NUM_X_FEATURES), np.float32)
        y = np.zeros((len(events), length, NUM_Y_FEATURES), np.float32)
        for row, (Xe, ye, _) in enumerate(events):
            X[row, : Xe.shape[0]] = Xe
            y[row, : ye.shape[0]] = ye
        n_orig = np.array([k for _, _, k in events], np.int32)
        return {"X": X, "y": y, "n_elements": n, "n_elements_orig": n_orig}


class EpochBatches:
    """The first `limit` batches of `batches` (all of them with None), read on the first iteration
    and kept: every iteration yields the same batch objects."""

    def __init__(self, batches: Iterable[dict], limit: int | None = None):
        self._source, self._limit = batches, limit
        self._batches: list[dict] | None = None

    def __iter__(self) -> Iterator[dict]:
        if self._batches is None:
            self._batches = list(itertools.islice(self._source, self._limit))
        return iter(self._batches)
