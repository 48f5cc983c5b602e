"""The host input pipeline: shapes, padding, truncation, targets, sharding, shuffling, length
bucketing, planned shapes, the element-count table, caching, endless passes, the epoch cache, the
old-format refusal, and a run without TensorFlow."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil

import keras
import numpy as np
import pytest

from hepbench.core.errors import DataFormatError, HepbenchError, UsageError
from hepbench.mlpf.config import Config, DataConfig, ModelConfig
from hepbench.mlpf.data.delphes import Event, write_file
from hepbench.mlpf.data.format import YCol, published_name
from hepbench.mlpf.data.lengths import COUNTS_FILE, read_element_counts
from hepbench.mlpf.data.pipeline import Batches, EpochBatches, element_counts, padded_length, shuffled
from hepbench.mlpf.data.tfds_builder import build, built_dir
from hepbench.mlpf.model.losses import mlpf_losses
from hepbench.mlpf.model.mlpf import build_model
from hepbench.mlpf.train.loop import DataSource

BIN, MAX = 16, 64
CFG = DataConfig(max_elements=MAX, batch_size=3, seed=1, bucket_lookahead=0)  # file order: bucketing has its own tests
EVENTS = 10


@pytest.fixture(scope="module")
def data(tmp_path_factory, random_event):
    """(data directory, train events in dataset order): 10 events in two files, one longer than MAX."""

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
    data_dir = tmp_path_factory.mktemp("data")
    build(manual, data_dir)
    return data_dir, first + second


def batches(data_dir, cfg=CFG, **kw):
    return list(Batches(data_dir, "train", cfg, bin_size=BIN, **kw))


def ids(batch_list, events):
    """The events of `batch_list` as indices into `events` (each event's first pT value is unique)."""
    index = {float(e.X[0, 1]): k for k, e in enumerate(events)}
    return [index[float(x[0, 1])] for b in batch_list for x in b["X"]]


def test_batches_have_the_documented_shapes_and_dtypes(data):
    out = batches(data[0])
    assert [len(b["n_elements"]) for b in out] == [3, 3, 3, 1]
    for b in out:
        assert set(b) == {"X", "y", "n_elements", "n_elements_orig"}
        B, L, _ = b["X"].shape
        assert L % BIN == 0 and L <= MAX
        assert b["X"].dtype == np.float32 and b["X"].shape == (B, L, 12)
        assert b["y"].dtype == np.float32 and b["y"].shape == (B, L, 7)
        assert b["n_elements"].dtype == np.int32 and b["n_elements_orig"].dtype == np.int32
        assert L == max(-(-int(b["n_elements"].max()) // BIN) * BIN, BIN)  # the batch's longest, in bins


def test_file_order_real_rows_match_the_events_and_padding_is_zero(data):
    data_dir, events = data
    keys = ("X", "y", "n_elements", "n_elements_orig")
    flat = [tuple(b[key][k] for key in keys) for b in batches(data_dir) for k in range(len(b["X"]))]
    assert len(flat) == len(events)
    for (X, y, n, n_orig), e in zip(flat, events):
        assert n_orig == e.num_elements and n == min(e.num_elements, MAX)
        assert np.array_equal(X[:n], e.X[:n]) and np.array_equal(y[:n], e.ygen[:n])
        assert not X[n:].any() and not y[n:].any()


def test_long_events_are_truncated_at_max_elements(data):
    data_dir, events = data
    b = batches(data_dir)[0]
    assert b["n_elements_orig"][2] == 80 and b["n_elements"][2] == MAX
    assert b["X"].shape[1] == MAX
    assert np.array_equal(b["X"][2], events[2].X[:MAX])


def test_target_cand_selects_ycand(data):
    data_dir, events = data
    b = batches(data_dir, dataclasses.replace(CFG, target="cand"))[0]
    n = b["n_elements"][0]
    assert np.array_equal(b["y"][0, :n], events[0].ycand)
    assert not np.array_equal(b["y"][0, :n], events[0].ygen)


def test_pad_to_max_gives_one_static_shape(data):
    cfg = dataclasses.replace(CFG, max_elements=70, pad_to_max=True)  # 70 rounds up to 80
    assert padded_length(cfg, BIN) == 80 and padded_length(CFG, BIN) is None
    out = batches(data[0], cfg, drop_remainder=True)
    assert len(out) == 3 and all(b["X"].shape == (3, 80, 12) and b["y"].shape == (3, 80, 7) for b in out)


def test_workers_get_disjoint_shards_that_cover_the_split(data):
    data_dir, events = data
    shards = [ids(batches(data_dir, num_workers=3, worker_index=w), events) for w in range(3)]
    assert shards[1] == [1, 4, 7]  # event k goes to worker k % 3, in file order
    assert sorted(shards[0] + shards[1] + shards[2]) == list(range(len(events)))


@pytest.mark.parametrize("index, workers", [(2, 2), (-1, 2), (0, 0)])
def test_invalid_worker_index_is_an_error(data, index, workers):
    with pytest.raises(UsageError, match="worker index"):
        Batches(data[0], "train", CFG, bin_size=BIN, num_workers=workers, worker_index=index)


def test_shuffle_is_deterministic_for_a_seed_and_new_every_epoch(data):
    data_dir, events = data
    cfg = dataclasses.replace(CFG, shuffle_buffer=4, batch_size=2)
    per_epoch = EVENTS // cfg.batch_size
    three = list(itertools.islice(iter(Batches(data_dir, "train", cfg, bin_size=BIN, repeat=True)), 3 * per_epoch))
    epochs = [ids(three[e * per_epoch : (e + 1) * per_epoch], events) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(EVENTS))  # every event exactly once per epoch
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled every epoch
    again = list(itertools.islice(iter(Batches(data_dir, "train", cfg, bin_size=BIN, repeat=True)), 3 * per_epoch))
    assert ids(again, events) == sum(epochs, [])  # the same orders for the same seed
    assert ids(batches(data_dir, dataclasses.replace(cfg, seed=2)), events) != epochs[0]
    assert ids(batches(data_dir), events) == list(range(EVENTS))  # no shuffle: file order
    single = Batches(data_dir, "train", cfg, bin_size=BIN)  # without repeat every pass is an epoch too
    assert [ids(single, events) for _ in range(2)] == epochs[:2]


BUCKETED = dataclasses.replace(CFG, batch_size=2, bucket_lookahead=2)


def lengths_of(batch_list):
    """The padded length each event of `batch_list` would have alone, per batch."""
    return [sorted({max(-(-int(n) // BIN) * BIN, BIN) for n in b["n_elements"]}) for b in batch_list]


def test_bucketing_batches_events_of_one_length_each_once_and_the_same_every_run(data):
    data_dir, events = data
    plain = batches(data_dir, dataclasses.replace(BUCKETED, bucket_lookahead=0))
    out = batches(data_dir, BUCKETED)
    assert sorted(ids(out, events)) == list(range(EVENTS)) and len(out) == len(plain) == 5
    assert ids(out, events) != ids(plain, events)
    mixed = lambda bl: sum(len(lengths) > 1 for lengths in lengths_of(bl))  # noqa: E731
    assert mixed(out) < mixed(plain)
    assert ids(batches(data_dir, BUCKETED), events) == ids(out, events)  # deterministic
    assert sum(element_counts(b)[1] for b in out) < sum(element_counts(b)[1] for b in plain)
    for b in out:  # still the events' own rows, padding zero
        for row, k in enumerate(ids([b], events)):
            n = b["n_elements"][row]
            assert np.array_equal(b["X"][row, :n], events[k].X[:n]) and not b["X"][row, n:].any()
    dropped = batches(data_dir, dataclasses.replace(BUCKETED, batch_size=3), drop_remainder=True)
    assert [len(b["n_elements"]) for b in dropped] == [3, 3, 3] and len(set(ids(dropped, events))) == 9


def test_bucketing_is_reshuffled_every_epoch_and_seeded(data):
    data_dir, events = data
    cfg = dataclasses.replace(BUCKETED, shuffle_buffer=4)
    endless = iter(Batches(data_dir, "train", cfg, bin_size=BIN, repeat=True))
    epochs = [ids(list(itertools.islice(endless, 5)), events) for _ in range(3)]
    assert all(sorted(e) == list(range(EVENTS)) for e in epochs) and epochs[0] != epochs[1] != epochs[2]
    assert ids(batches(data_dir, cfg), events) == epochs[0]
    assert ids(batches(data_dir, dataclasses.replace(cfg, seed=2)), events) != epochs[0]


@pytest.mark.parametrize(
    "cfg, kw",
    [
        (BUCKETED, {}),
        (dataclasses.replace(BUCKETED, shuffle_buffer=4, batch_size=3), {"repeat": True}),
        (dataclasses.replace(CFG, shuffle_buffer=3), {"repeat": True, "drop_remainder": True}),
        (dataclasses.replace(BUCKETED, pad_to_max=True), {"num_workers": 2, "worker_index": 1}),
    ],
)
def test_shapes_are_those_a_fresh_pipeline_yields_and_leave_the_epochs_alone(data, cfg, kw):
    pipeline = Batches(data[0], "train", cfg, bin_size=BIN, **kw)
    planned = list(itertools.islice(pipeline.shapes(), 12))
    got = [b["X"].shape[:2] for b in itertools.islice(iter(pipeline), 12)]
    assert planned == got
    # After this object's own passes (its epochs moved on) shapes() still plans a fresh object's.
    assert list(itertools.islice(pipeline.shapes(), 12)) == planned


def test_shapes_do_not_read_records(data, monkeypatch):
    pipeline = Batches(data[0], "train", BUCKETED, bin_size=BIN)
    monkeypatch.setattr(pipeline, "records", None)  # any read would fail
    assert [events for events, _ in pipeline.shapes()] == [2] * 5


def test_the_build_writes_the_element_counts_in_record_order(data):
    data_dir, events = data
    version = built_dir(data_dir)
    assert read_element_counts(version, "train").tolist() == [e.num_elements for e in events]
    assert read_element_counts(version, "test").tolist() == [9]


def test_a_missing_or_foreign_element_count_table_is_refused(data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data[0], copy)
    table = built_dir(copy) / COUNTS_FILE
    saved = json.loads(table.read_text())
    table.unlink()
    with pytest.raises(DataFormatError, match="missing") as e:
        Batches(copy, "train", BUCKETED, bin_size=BIN)
    assert str(table) in str(e.value) and "hepbench data build" in str(e.value) and "make data" in str(e.value)
    with pytest.raises(DataFormatError, match=COUNTS_FILE):
        next(Batches(copy, "train", CFG, bin_size=BIN).shapes())
    assert len(batches(copy, CFG)) == 4  # without bucketing the table is not needed
    assert len(list(Batches(copy, "train", dataclasses.replace(BUCKETED, pad_to_max=True), bin_size=BIN).shapes())) == 5
    short = {**saved["splits"], "train": saved["splits"]["train"][:-1]}
    for broken, message in (
        ({**saved, "source_checksum": "0" * 64}, "written for another build"),
        ({**saved, "splits": short}, "9 element counts for split 'train', which has 10"),
        ({**saved, "splits": {"test": [9]}}, "no element counts for split 'train'"),
    ):
        table.write_text(json.dumps(broken))
        with pytest.raises(DataFormatError, match=message):
            Batches(copy, "train", BUCKETED, bin_size=BIN)
    lying = saved["splits"]["train"][:]
    lying[0] += 1
    table.write_text(json.dumps({**saved, "splits": {**saved["splits"], "train": lying}}))
    with pytest.raises(DataFormatError, match="event 0 of split 'train' has 5 elements, the table says 6"):
        batches(copy, dataclasses.replace(BUCKETED, prefetch=0))


def test_an_events_loss_is_unchanged_by_bucketing_where_its_lsh_hash_is(data):
    """The model ignores padding as long as an event's LSH hash keeps its max(1, bins // 2)
    projections (hepbench.mlpf.model.layers; 1 to 3 bins here): there its loss is the same
    in its bucketed batch as in its plain one, whatever the padded length."""
    data_dir, events = data
    keras.utils.set_random_seed(3)
    model = build_model(
        ModelConfig(
            bin_size=BIN,
            distance_dim=8,
            ffn_dist_hidden_dim=8,
            output_dim=16,
            decoder_hidden_dim=16,
            num_graph_layers_id=1,
            num_graph_layers_reg=1,
        )
    )

    def per_event(batch_list):  # event -> (padded length, its own loss)
        out = {}
        for b in batch_list:
            outputs = model(b["X"])
            for row, k in enumerate(ids([b], events)):
                own = {name: np.asarray(v)[row : row + 1] for name, v in outputs.items()}
                loss = mlpf_losses(b["X"][row : row + 1], b["y"][row : row + 1], own)["loss"]
                out[k] = (b["X"].shape[1], float(loss))
        return out

    plain = per_event(batches(data_dir, dataclasses.replace(BUCKETED, bucket_lookahead=0)))
    bucket = per_event(batches(data_dir, BUCKETED))
    hashes = lambda length: max(1, length // BIN // 2)  # noqa: E731
    same = [k for k in plain if hashes(plain[k][0]) == hashes(bucket[k][0])]
    assert any(plain[k][0] != bucket[k][0] for k in same)  # some event did move to another length
    for k in same:
        assert bucket[k][1] == pytest.approx(plain[k][1], rel=1e-5), k


def test_shuffle_buffer_draws_from_the_buffer_only():
    rng = np.random.default_rng(0)
    out = list(shuffled(np.arange(100), 5, rng))
    assert sorted(out) == list(range(100))
    # With 5 slots, the k-th output was among the first k + 5 items.
    assert all(item < k + 5 for k, item in enumerate(out))
    assert list(shuffled(np.arange(10), 1, rng)) == list(range(10))  # one slot: no change


def test_memory_cache_reads_each_event_once_and_gives_the_same_batches(data, monkeypatch):
    data_dir, events = data
    cached = Batches(data_dir, "train", dataclasses.replace(CFG, cache="memory"), bin_size=BIN)
    reads = []

    class Counting:
        def __init__(self, records):
            self.records = records

        def __len__(self):
            return len(self.records)

        def __getitem__(self, k):
            reads.append(k)
            return self.records[k]

    monkeypatch.setattr(cached, "records", Counting(cached.records))
    plain = batches(data_dir)
    for _ in range(2):
        out = list(cached)
        assert len(out) == len(plain) > 0  # zip would let a short or empty pass through
        assert all(np.array_equal(a["X"], b["X"]) and np.array_equal(a["y"], b["y"]) for a, b in zip(out, plain))
    assert sorted(reads) == list(range(EVENTS))


def test_filling_the_cache_reads_every_event_of_the_shard_once_before_the_first_batch(data, monkeypatch):
    data_dir, _ = data
    cached = Batches(
        data_dir, "train", dataclasses.replace(CFG, cache="memory"), bin_size=BIN, num_workers=2, worker_index=1
    )
    reads = []
    records = cached.records
    monkeypatch.setattr(
        cached,
        "records",
        type(
            "Counting",
            (),
            {"__len__": lambda self: len(records), "__getitem__": lambda self, k: reads.append(k) or records[k]},
        )(),
    )
    assert cached.fill_cache() == len(cached.indices) and sorted(reads) == cached.indices.tolist()
    assert cached.fill_cache() == 0  # all there already
    first = list(cached)
    assert sorted(reads) == cached.indices.tolist()  # the pass itself read nothing more
    plain = batches(data_dir, num_workers=2, worker_index=1)
    assert len(first) == len(plain) > 0
    assert all(np.array_equal(a["X"], b["X"]) for a, b in zip(first, plain))
    assert Batches(data_dir, "train", CFG, bin_size=BIN).fill_cache() == 0  # data.cache none: nothing to fill


def test_a_file_cache_is_refused_naming_the_option():
    with pytest.raises(UsageError, match="data.cache must be 'none' or 'memory'"):
        DataConfig(cache="/tmp/cache/delphes")


def test_repeat_is_endless_and_an_empty_shard_is_an_error(data):
    data_dir, _ = data
    endless = iter(Batches(data_dir, "test", CFG, bin_size=BIN, repeat=True))  # one test event
    assert [len(next(endless)["n_elements"]) for _ in range(5)] == [1] * 5
    starving = Batches(data_dir, "test", CFG, bin_size=BIN, repeat=True, drop_remainder=True)
    with pytest.raises(HepbenchError, match="make no batch of 3"):
        next(iter(starving))


def test_element_counts(data):
    for b in batches(data[0]):
        real, padded = element_counts(b)
        assert real == int(np.sum(b["n_elements"])) and padded == b["X"].shape[0] * b["X"].shape[1]


def test_builder_and_unknown_split(data):
    from hepbench.mlpf.data.records import open_builder

    data_dir, _ = data
    assert len(batches(open_builder(data_dir))) == 4  # a builder works as well as its data directory
    with pytest.raises(UsageError, match="available splits: test, train"):
        Batches(data_dir, "validation", CFG, bin_size=BIN)


def test_data_source_training_validation_and_epochs(data):
    data_dir, events = data
    cfg = Config(data=CFG, model=ModelConfig(bin_size=BIN))
    train = iter(DataSource(data_dir, num_workers=2, worker_index=1).training(cfg, replicas=2))
    first = [next(train) for _ in range(3)]  # worker 1's 5 events in batches of 2 x 3: 5, then 5 again
    assert [len(b["n_elements"]) for b in first] == [5, 5, 5]
    assert ids(first[:1], events) == [1, 3, 5, 7, 9]
    val = iter(DataSource(data_dir).validation(cfg))
    assert [len(next(val)["n_elements"]) for _ in range(2)] == [1, 1]
    epoch = DataSource(data_dir).epoch(cfg, "train", 4)  # 4 events: two whole batches of 3
    passes = [list(epoch) for _ in range(2)]
    assert [len(b["n_elements"]) for b in passes[0]] == [3, 3]
    assert all(a is b for a, b in zip(*passes))  # the same batches, not re-read
    assert len(list(DataSource(data_dir).epoch(cfg, "train", None))) == 4


def test_epoch_batches_reads_its_source_once():
    reads = []
    epoch = EpochBatches(map(lambda k: reads.append(k) or {"k": k}, range(5)), limit=3)
    assert [b["k"] for b in epoch] == [0, 1, 2] == [b["k"] for b in epoch]
    assert reads == [0, 1, 2]


def test_a_data_set_in_the_old_tfrecord_format_is_refused(data, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(data[0], old)
    info_file = old / "delphes_pf" / "1.1.0" / "dataset_info.json"
    info = json.loads(info_file.read_text())
    for fmt in ("tfrecord", None):  # TFDS leaves the field out for its default, tfrecord
        info.pop("fileFormat")
        if fmt:
            info["fileFormat"] = fmt
        info_file.write_text(json.dumps(info))
        with pytest.raises(DataFormatError, match="tfrecord format of an older hepbench") as e:
            Batches(old, "train", CFG, bin_size=BIN)
        assert str(old) in str(e.value) and "hepbench data build" in str(e.value) and "make data" in str(e.value)
        info["fileFormat"] = "tfrecord"


def test_the_pipeline_runs_without_tensorflow(data, without_tensorflow):
    data_dir, events = data
    r = without_tensorflow(f"""
        import itertools
        from hepbench.mlpf.config import Config, DataConfig, ModelConfig
        from hepbench.mlpf.train.loop import DataSource
        cfg = Config(data=DataConfig(max_elements={MAX}, batch_size=3, shuffle_buffer=4),
                     model=ModelConfig(bin_size={BIN}))
        train = iter(DataSource({str(data_dir)!r}).training(cfg))
        counts = [int(b["n_elements_orig"].sum()) for b in itertools.islice(train, 8)]
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print(sum(counts[:4]), len(counts))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(sum(e.num_elements for e in events)), "8"]  # 4 batches = one epoch


def test_an_abandoned_endless_pipeline_does_not_keep_the_process_alive(data, without_tensorflow):
    r = without_tensorflow(f"""
        import threading
        from hepbench.mlpf.config import DataConfig
        from hepbench.mlpf.data.pipeline import Batches
        it = iter(Batches({str(data[0])!r}, "train", DataConfig(max_elements={MAX}, batch_size=2, prefetch=3),
                          bin_size={BIN}, repeat=True, read_threads=2))
        next(it)
        print(sum(t.name == "hepbench-prefetch" for t in threading.enumerate()))
    """)  # the interpreter exits with `it` still open and its threads waiting for slots
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2"
