"""`data info`: statistics, checksum, and the same answer for source files and the built data set."""

from __future__ import annotations

import numpy as np
import pytest

from hepbench.core.errors import DataFormatError, DataIntegrityError
from hepbench.mlpf.data.built import built_dir
from hepbench.mlpf.data.format import published_name, synthetic_name
from hepbench.mlpf.data.info import format_summary, summarize
from hepbench.mlpf.data.integrity import record_checksums


@pytest.fixture
def source_dir(tmp_path, write_events):
    d = tmp_path / "manual"
    d.mkdir()
    a = write_events(d / published_name("ttbar", 0, 0), count=3, seed=1)
    b = write_events(d / published_name("qcd", 10, 0), count=2, seed=2)
    (d / "README.txt").write_text("not a data file")
    return d, a + b


def test_statistics_are_exact(source_dir):
    d, events = source_dir
    s = summarize(d)
    n = np.array([e.num_elements for e in events])
    assert s["events"] == 5
    assert s["splits"] == {"train": {"files": 1, "events": 3}, "test": {"files": 1, "events": 2}}
    assert s["elements"]["mean"] == pytest.approx(n.mean())
    assert (s["elements"]["min"], s["elements"]["max"]) == (n.min(), n.max())
    tracks = sum(int((e.X[:, 0] == 2).sum()) for e in events)
    assert s["element_types"] == {"tower": int(n.sum()) - tracks, "track": tracks}
    assert sum(s["ygen_class_fractions"].values()) == pytest.approx(1.0)
    assert s["synthetic"] is False
    text = format_summary(s)
    assert "published" in text and f"sha256:{s['checksum']}" in text


def test_checksum_follows_content_not_location(source_dir, tmp_path, write_events):
    d, _ = source_dir
    first = summarize(d)["checksum"]
    moved = tmp_path / "elsewhere"
    d.rename(moved)
    assert summarize(moved)["checksum"] == first
    write_events(moved / published_name("qcd", 10, 0), count=2, seed=99)  # other content, same name
    assert summarize(moved)["checksum"] != first


def test_errors(tmp_path, write_events):
    with pytest.raises(DataFormatError, match="no such directory"):
        summarize(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no data files"):
        summarize(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    write_events(mixed / published_name("ttbar", 0, 0))
    write_events(mixed / synthetic_name("ttbar", 0, 0))
    with pytest.raises(DataFormatError, match="both synthetic"):
        summarize(mixed)


@pytest.mark.slow
def test_built_data_set_gives_the_same_summary(source_dir, tmp_path):
    from hepbench.mlpf.data.tfds_builder import build

    d, _ = source_dir
    build(d, tmp_path / "tfds")
    digest = record_checksums(built_dir(tmp_path / "tfds"))
    built, source = summarize(tmp_path / "tfds"), summarize(d)
    for key in ("events", "elements", "element_types", "splits", "synthetic"):
        assert built[key] == source[key], key
    assert built["kind"].startswith("TFDS delphes_pf/1.1.0")
    # Its checksum is the built files' verified digest (a run's bmkdata_checksum); the event files
    # it was built from keep theirs.
    assert built["checksum"] == digest and built["source_checksum"] == source["checksum"] != digest
    text = format_summary(built)
    assert f"checksum      sha256:{digest}" in text and f"source files  sha256:{source['checksum']}" in text


@pytest.mark.slow
def test_a_damaged_built_data_set_is_refused_by_name(source_dir, tmp_path):
    from hepbench.mlpf.data.tfds_builder import build

    d, _ = source_dir
    build(d, tmp_path / "tfds")
    version_dir = built_dir(tmp_path / "tfds")
    record_checksums(version_dir)
    (version_dir / "metadata.json").write_text("{}")  # TFDS would read this one without complaint
    with pytest.raises(DataIntegrityError, match="metadata.json: truncated"):
        summarize(tmp_path / "tfds")
