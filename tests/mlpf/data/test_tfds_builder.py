"""The delphes_pf TFDS builder: array_record splits, exact round trip in file order, provenance,
the element-count table, errors, and a build without TensorFlow."""

from __future__ import annotations

import importlib
import json
import shutil
import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from hepbench.core.errors import DataFormatError, DataIntegrityError
from hepbench.mlpf.data import tfds_builder
from hepbench.mlpf.data.built import built_dir
from hepbench.mlpf.data.delphes import write_file
from hepbench.mlpf.data.format import published_name, synthetic_name
from hepbench.mlpf.data.integrity import MANIFEST_FILE
from hepbench.mlpf.data.lengths import COUNTS_FILE, read_element_counts
from hepbench.mlpf.data.records import open_split
from hepbench.mlpf.data.sources import file_sha256, list_sources, source_checksum
from hepbench.mlpf.data.tfds_builder import build, load_builder

# (j, i) chosen so that numeric and string order differ: 0_2 must come before 0_10.
TTBAR = [((0, 10), 4), ((1, 0), 2), ((0, 2), 3)]
QCD = [((10, 0), 3)]


@pytest.fixture(scope="module")
def built(tmp_path_factory, random_event):
    """One build per module: (builder, data_dir, manual_dir, {split: events in expected order})."""
    manual = tmp_path_factory.mktemp("manual")
    rng = np.random.default_rng(1)
    files = {}
    for process, specs in (("ttbar", TTBAR), ("qcd", QCD)):
        for (j, i), count in specs:
            events = [random_event(rng, int(rng.integers(5, 50))) for _ in range(count)]
            write_file(manual / published_name(process, j, i), events)
            files[(process, j, i)] = events
    (manual / "README.txt").write_text("not a data file")
    (manual / "tev14_pythia8_ttbar_0_0.pkl").write_bytes(b"not a data file name either")
    expected = {
        "train": [e for key in sorted(k for k in files if k[0] == "ttbar") for e in files[key]],
        "test": [e for key in sorted(k for k in files if k[0] == "qcd") for e in files[key]],
    }
    data = tmp_path_factory.mktemp("data")
    return build(manual, data), data, manual, expected


def test_splits_have_the_right_event_counts(built):
    builder, *_ = built
    assert builder.info.splits["train"].num_examples == 9
    assert builder.info.splits["test"].num_examples == 3
    assert builder.info.disable_shuffling
    assert builder.info.file_format.value == "array_record"
    assert sorted(p.name for p in built_dir(built[1]).glob("*.array_record-*")) == [
        "delphes_pf-test.array_record-00000-of-00001",
        "delphes_pf-train.array_record-00000-of-00001",
    ]


@pytest.mark.parametrize("split", ["train", "test"])
def test_events_round_trip_exactly_in_file_order(built, split):
    builder, _, _, expected = built
    got = list(open_split(builder, split))
    assert len(got) == len(expected[split])
    for g, e in zip(got, expected[split]):
        assert g["X"].dtype == np.float32 and g["ygen"].shape == e.ygen.shape
        assert np.array_equal(g["X"], e.X)
        assert np.array_equal(g["ygen"], e.ygen)
        assert np.array_equal(g["ycand"], e.ycand)


def test_provenance_survives_load_builder(built):
    _, data, manual, _ = built
    meta = load_builder(data).info.metadata
    names = [f["name"] for f in meta["source_files"]]
    assert names == [
        published_name("ttbar", 0, 2),
        published_name("ttbar", 0, 10),
        published_name("ttbar", 1, 0),
        published_name("qcd", 10, 0),
    ]
    for f in meta["source_files"]:
        assert f["sha256"] == file_sha256(manual / f["name"])
    assert meta["synthetic"] is False
    assert meta["source_checksum"] == source_checksum(manual / n for n in names)


def test_the_element_count_table_follows_the_records(built):
    _, data, _, expected = built
    for split, events in expected.items():
        assert read_element_counts(built_dir(data), split).tolist() == [e.num_elements for e in events]


def test_a_rebuild_completes_an_older_build_and_refuses_a_damaged_one(built, tmp_path, monkeypatch):
    _, data, manual, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    table, manifest = built_dir(copy) / COUNTS_FILE, built_dir(copy) / MANIFEST_FILE
    good, recorded = table.read_text(), manifest.read_text()
    # An earlier hepbench's build (neither table nor manifest): the rebuild adds both, the same.
    table.unlink()
    manifest.unlink()
    build(manual, copy)
    assert table.read_text() == good and manifest.read_text() == recorded
    # A build with a manifest is verified first: a damaged one is refused, not silently repaired.
    table.write_text('{"splits": {}}')
    with pytest.raises(DataIntegrityError, match=f"{COUNTS_FILE}.*Remove .* and build it again"):
        build(manual, copy)
    table.write_text(good)
    monkeypatch.setattr(tfds_builder, "write_element_counts", lambda where: pytest.fail("rewrote a valid table"))
    build(manual, copy)
    assert manifest.read_text() == recorded


def test_source_checksum_tracks_every_byte_but_not_the_order(tmp_path, write_events):
    a, b = tmp_path / published_name("ttbar", 0, 0), tmp_path / published_name("ttbar", 0, 1)
    write_events(a, 2, seed=1)
    write_events(b, 2, seed=2)
    before = source_checksum([a, b])
    assert source_checksum([b, a]) == before
    raw = bytearray(b.read_bytes())
    raw[len(raw) // 2] ^= 1
    b.write_bytes(bytes(raw))
    assert source_checksum([a, b]) != before


def test_rebuild_reuses_the_same_sources_and_refuses_others(built, tmp_path, write_events):
    builder, data, manual, _ = built
    assert build(manual, data).info.splits["train"].num_examples == 9
    write_events(tmp_path / published_name("ttbar", 0, 0), 2)
    with pytest.raises(DataFormatError, match="built from other files"):
        build(tmp_path, data)


def test_synthetic_build_is_offline_and_marked(tmp_path, write_events, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the build tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    # The two TFDS functions that would touch gs://tfds-data (GCS is off by default in 4.9.10).
    monkeypatch.setattr(tfds.core.utils.gcs_utils, "exists", no_network)
    monkeypatch.setattr(tfds.core.utils.gcs_utils, "download_gcs_folder", no_network)
    manual = tmp_path / "manual"
    write_events(manual / synthetic_name("qcd", 7, 0), 2)
    builder = build(manual, tmp_path / "data")
    assert list(builder.info.splits.keys()) == ["test"]  # no ttbar files: no train split
    assert load_builder(tmp_path / "data").info.metadata["synthetic"] is True


def test_mixing_synthetic_and_published_files_is_an_error(tmp_path, write_events):
    write_events(tmp_path / published_name("ttbar", 0, 0), 1)
    write_events(tmp_path / synthetic_name("ttbar", 1, 0), 1)
    with pytest.raises(DataFormatError, match="one or the other") as e:
        build(tmp_path, tmp_path / "data")
    assert str(tmp_path) in str(e.value)
    assert not (tmp_path / "data").exists()


def test_directory_without_data_files_is_an_error(tmp_path):
    (tmp_path / "README.txt").write_text("nothing here")
    with pytest.raises(DataFormatError, match="no data files") as e:
        build(tmp_path, tmp_path / "data")
    assert str(tmp_path) in str(e.value)
    with pytest.raises(DataFormatError, match="no such directory"):
        list_sources(tmp_path / "missing")


def test_corrupt_file_fails_the_build_naming_it(tmp_path, write_events):
    manual = tmp_path / "manual"
    write_events(manual / published_name("ttbar", 0, 0), 1)
    (manual / published_name("ttbar", 0, 1)).write_bytes(b"BZh9 definitely not bz2")
    with pytest.raises(DataFormatError, match=published_name("ttbar", 0, 1)):
        build(manual, tmp_path / "data")
    with pytest.raises(DataFormatError, match="no delphes_pf .* built there"):  # nothing half-built left as data
        load_builder(tmp_path / "data")


def test_load_builder_on_an_unbuilt_directory_says_what_to_do(tmp_path):
    with pytest.raises(DataFormatError, match="hepbench data build") as e:
        load_builder(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_a_build_of_the_old_tfrecord_format_is_refused_not_reused(built, tmp_path):
    _, data, manual, _ = built
    old = tmp_path / "old"
    shutil.copytree(data, old)
    info_file = built_dir(old) / "dataset_info.json"
    info_file.write_text(json.dumps({**json.loads(info_file.read_text()), "fileFormat": "tfrecord"}))
    with pytest.raises(DataFormatError, match="older hepbench.*Remove .* and build it again") as e:
        build(manual, old)
    assert str(old) in str(e.value) and "hepbench data build" in str(e.value)


def test_build_and_info_need_no_tensorflow(tmp_path, write_events, without_tensorflow):
    manual = tmp_path / "manual"
    events = write_events(manual / published_name("ttbar", 0, 0), 3)
    r = without_tensorflow(f"""
        from hepbench.cli import main
        code = main(["data", "build", "--manual-dir", {str(manual)!r}, "--data-dir", {str(tmp_path / "data")!r}])
        code = code or main(["data", "info", "--json", {str(tmp_path / "data")!r}])
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        sys.exit(code)
    """)
    assert r.returncode == 0, r.stderr
    assert "train: 3 events" in r.stdout and '"events": 3' in r.stdout
    got = list(open_split(tmp_path / "data", "train"))
    assert all(np.array_equal(g["X"], e.X) for g, e in zip(got, events)) and len(got) == 3


def test_the_builder_stays_out_of_the_tfds_registry_so_its_module_can_be_reimported(built):
    # Registered, a second definition of the class (a reload, a notebook cell run again) would raise
    # "Dataset with name delphes_pf already registered"; load_builder instantiates the class itself.
    _, data, _, _ = built
    assert "delphes_pf" not in tfds.list_builders(with_community_datasets=False)
    importlib.reload(tfds_builder)
    reloaded = tfds_builder.load_builder(data)
    assert type(reloaded) is tfds_builder.DelphesPf and reloaded.info.splits["train"].num_examples == 9
