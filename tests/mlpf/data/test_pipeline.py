"""The tf.data pipeline: shapes, padding, truncation, targets, sharding, shuffling, caching."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hepbench.mlpf.config import DataConfig
from hepbench.mlpf.data.delphes import Event, write_file
from hepbench.mlpf.data.format import YCol, published_name
from hepbench.mlpf.data.pipeline import element_counts, events_in_batch, make_dataset, padded_length
from hepbench.mlpf.data.tfds_builder import build
from hepbench.core.errors import UsageError

BIN, MAX = 16, 64
CFG = DataConfig(max_elements=MAX, batch_size=3, seed=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory, random_event):
    """(builder, train events in dataset order): 10 events, one longer than MAX."""

    def _event(rng, n: int) -> Event:
        e = random_event(rng, n)
        ycand = e.ygen.copy()
        ycand[:, YCol.PT :] *= 2.0  # random_event's ycand equals ygen; make the targets distinguishable
        return Event(e.X, e.ygen, ycand)

    rng = np.random.default_rng(3)
    first = [_event(rng, n) for n in (5, 17, 80, 32, 49)]
    second = [_event(rng, int(n)) for n in rng.integers(5, 50, size=5)]
    manual = tmp_path_factory.mktemp("manual")
    write_file(manual / published_name("ttbar", 0, 0), first)
    write_file(manual / published_name("ttbar", 0, 1), second)
    write_file(manual / published_name("qcd", 10, 0), [_event(rng, 9)])
    return build(manual, tmp_path_factory.mktemp("data")), first + second


def batches(builder, cfg=CFG, **kw):
    return list(make_dataset(builder, "train", cfg, bin_size=BIN, **kw).as_numpy_iterator())


def event_ids(builder, events, cfg=CFG, **kw):
    """The dataset order as indices into `events` (each event's first pT value is unique)."""
    index = {float(e.X[0, 1]): k for k, e in enumerate(events)}
    return [index[float(x[0, 1])] for b in batches(builder, cfg, **kw) for x in b["X"]]


def test_batches_have_the_documented_shapes_and_dtypes(data):
    builder, events = data
    out = batches(builder)
    assert [len(b["n_elements"]) for b in out] == [3, 3, 3, 1]
    for b in out:
        B, L, _ = b["X"].shape
        assert L % BIN == 0 and L <= MAX
        assert b["X"].dtype == np.float32 and b["X"].shape == (B, L, 12)
        assert b["y"].dtype == np.float32 and b["y"].shape == (B, L, 7)
        assert b["n_elements"].dtype == np.int32 and b["n_elements_orig"].dtype == np.int32


def test_real_rows_match_the_events_and_padding_is_zero(data):
    builder, events = data
    keys = ("X", "y", "n_elements", "n_elements_orig")
    flat = [tuple(b[key][k] for key in keys) for b in batches(builder) for k in range(len(b["X"]))]
    assert len(flat) == len(events)
    for (X, y, n, n_orig), e in zip(flat, events):
        assert n_orig == e.num_elements and n == min(e.num_elements, MAX)
        assert np.array_equal(X[:n], e.X[:n]) and np.array_equal(y[:n], e.ygen[:n])
        assert not X[n:].any() and not y[n:].any()


def test_long_events_are_truncated_at_max_elements(data):
    builder, events = data
    b = batches(builder)[0]
    assert b["n_elements_orig"][2] == 80 and b["n_elements"][2] == MAX
    assert b["X"].shape[1] == MAX
    assert np.array_equal(b["X"][2], events[2].X[:MAX])


def test_target_cand_selects_ycand(data):
    builder, events = data
    b = batches(builder, dataclasses.replace(CFG, target="cand"))[0]
    n = b["n_elements"][0]
    assert np.array_equal(b["y"][0, :n], events[0].ycand)
    assert not np.array_equal(b["y"][0, :n], events[0].ygen)


def test_pad_to_max_gives_one_static_shape(data):
    builder, _ = data
    cfg = dataclasses.replace(CFG, max_elements=70, pad_to_max=True)  # 70 rounds up to 80
    assert padded_length(cfg, BIN) == 80
    ds = make_dataset(builder, "train", cfg, bin_size=BIN, drop_remainder=True)
    assert tuple(ds.element_spec["X"].shape) == (3, 80, 12)
    assert tuple(ds.element_spec["y"].shape) == (3, 80, 7)
    assert all(b["X"].shape == (3, 80, 12) for b in ds.as_numpy_iterator())


def test_workers_get_disjoint_shards_that_cover_the_split(data):
    builder, events = data
    shards = [event_ids(builder, events, num_workers=2, worker_index=w) for w in (0, 1)]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(len(events)))


@pytest.mark.parametrize("index, workers", [(2, 2), (-1, 2), (0, 0)])
def test_invalid_worker_index_is_an_error(data, index, workers):
    with pytest.raises(UsageError, match="worker index"):
        make_dataset(data[0], "train", CFG, bin_size=BIN, num_workers=workers, worker_index=index)


def test_shuffle_is_reproducible_for_a_seed(data):
    builder, events = data
    cfg = dataclasses.replace(CFG, shuffle_buffer=10)
    first = event_ids(builder, events, cfg)
    assert sorted(first) == list(range(len(events)))
    assert event_ids(builder, events, cfg) == first
    assert event_ids(builder, events, dataclasses.replace(cfg, seed=2)) != first
    assert event_ids(builder, events) == list(range(len(events)))  # no shuffle: file order


def test_memory_and_file_caches_give_the_same_batches(data, tmp_path):
    builder, events = data
    for cache in ("memory", str(tmp_path / "cache" / "delphes")):
        ds = make_dataset(builder, "train", dataclasses.replace(CFG, cache=cache), bin_size=BIN)
        for _ in range(2):  # the second pass reads the cache
            assert [e for b in ds.as_numpy_iterator() for e in b["n_elements_orig"]] == [
                e.num_elements for e in events
            ]
    assert any("train" in p.name for p in (tmp_path / "cache").iterdir())


def test_element_counts_and_events_in_batch(data):
    builder, _ = data
    for b in make_dataset(builder, "train", CFG, bin_size=BIN):
        real, padded = element_counts(b)
        assert int(real) == int(np.sum(b["n_elements"]))
        assert int(padded) == b["X"].shape[0] * b["X"].shape[1]
        assert int(events_in_batch(b)) == b["X"].shape[0]


def test_data_dir_and_unknown_split(data):
    builder, _ = data
    assert len(batches(builder.data_dir_root)) == 4  # a data directory works as well as a builder
    with pytest.raises(UsageError, match="available splits: test, train"):
        make_dataset(builder, "validation", CFG, bin_size=BIN)
