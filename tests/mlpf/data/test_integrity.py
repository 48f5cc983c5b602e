"""The built data set's checksums: recorded at build time, and every kind of damage refused by name."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from hepbench.cli import main
from hepbench.core.errors import DataFormatError, DataIntegrityError
from hepbench.mlpf.data import integrity
from hepbench.mlpf.data.built import built_dir
from hepbench.mlpf.data.integrity import MANIFEST_FILE, read_manifest, record_checksums, verify

TRAIN = "delphes_pf-train.array_record-00000-of-00001"
TEST = "delphes_pf-test.array_record-00000-of-00001"


@pytest.fixture
def recorded(built, tmp_path):
    """A private copy of the small built data set with its checksums recorded: (data dir, version dir, digest)."""
    data_dir = tmp_path / "tfds"
    shutil.copytree(built, data_dir)
    version_dir = built_dir(data_dir)
    return data_dir, version_dir, record_checksums(version_dir)


def flip_middle_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the content check can see it
    path.write_bytes(bytes(data))


def refused(version_dir, *fragments: str) -> str:
    """The message verify(version_dir) raises; asserts it contains each fragment and the rebuild hint."""
    with pytest.raises(DataIntegrityError) as e:
        verify(version_dir)
    message = str(e.value)
    for fragment in (*fragments, "hepbench data build --manual-dir DIR --data-dir", "make data"):
        assert fragment in message, message
    return message


def test_an_untouched_data_set_verifies_to_its_recorded_digest(recorded):
    _, version_dir, digest = recorded
    manifest = json.loads((version_dir / MANIFEST_FILE).read_text())
    assert verify(version_dir) == verify(version_dir) == digest == manifest["combined"]
    # Every other file of the version directory is covered (the splits, TFDS's JSON files, ...),
    # each with its real size and SHA-256; the manifest itself is not, and no temporary file is left.
    others = sorted(p.name for p in version_dir.iterdir() if p.name != MANIFEST_FILE)
    assert {TRAIN, TEST, "dataset_info.json", "metadata.json"} <= set(others)
    assert [f["name"] for f in manifest["files"]] == others
    for f in manifest["files"]:
        data = (version_dir / f["name"]).read_bytes()
        assert (f["bytes"], f["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert read_manifest(version_dir).total_bytes == sum(f["bytes"] for f in manifest["files"])


def test_the_digest_follows_the_content(recorded):
    _, version_dir, digest = recorded
    flip_middle_byte(version_dir / TRAIN)
    assert record_checksums(version_dir) != digest


def test_one_flipped_byte_in_the_middle_of_the_train_file_is_refused(recorded):
    _, version_dir, _ = recorded
    path = version_dir / TRAIN
    flip_middle_byte(path)
    refused(version_dir, f"{path}: content changed", "the data set in", "is not the one that was built")


def test_a_truncated_file_is_refused_without_reading_any_data(recorded, monkeypatch):
    _, version_dir, _ = recorded
    path = version_dir / TRAIN
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    monkeypatch.setattr(integrity, "_sha256", lambda p: pytest.fail(f"hashed {p}: sizes should have sufficed"))
    refused(version_dir, f"{path}: truncated: {size // 2} bytes, {size} when built")


def test_a_grown_file_is_refused(recorded):
    _, version_dir, _ = recorded
    path = version_dir / TEST
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\0")
    refused(version_dir, f"{path}: size changed: {size + 1} bytes, {size} when built")


def test_a_missing_file_is_refused(recorded):
    _, version_dir, _ = recorded
    (version_dir / TEST).unlink()
    refused(version_dir, f"{version_dir / TEST}: missing")


def test_an_extra_shard_is_refused(recorded):
    _, version_dir, _ = recorded
    extra = version_dir / "delphes_pf-train.array_record-00001-of-00002"
    shutil.copyfile(version_dir / TRAIN, extra)
    refused(version_dir, f"{extra}: not in {MANIFEST_FILE}")


def test_every_problem_is_named(recorded):
    _, version_dir, _ = recorded
    (version_dir / TEST).unlink()
    (version_dir / "stray.json").write_text("{}")
    message = refused(version_dir, f"{version_dir / TEST}: missing", f"{version_dir / 'stray.json'}: not in")
    assert message.count(str(version_dir)) >= 3


def test_a_data_set_without_checksums_is_refused(recorded):
    # As built by an older hepbench: nothing to verify against.
    _, version_dir, _ = recorded
    (version_dir / MANIFEST_FILE).unlink()
    refused(version_dir, f"{version_dir / MANIFEST_FILE}: missing", "older hepbench")


@pytest.mark.parametrize("edit", ["entry", "garbage", "format"])
def test_an_edited_or_unreadable_manifest_is_refused(recorded, edit):
    _, version_dir, _ = recorded
    path = version_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    if edit == "entry":  # an entry made to match a changed file, without the combined digest
        manifest["files"][0]["sha256"] = "0" * 64
        path.write_text(json.dumps(manifest))
        refused(version_dir, f"{path}: its combined digest does not match")
    elif edit == "garbage":
        path.write_text("{not json")
        refused(version_dir, f"{path}: unreadable")
    else:
        manifest["format"] = 99
        path.write_text(json.dumps(manifest))
        refused(version_dir, f"{path}: unreadable", "format 99")


def test_an_integrity_error_is_a_data_error_with_exit_code_1():
    assert issubclass(DataIntegrityError, DataFormatError) and DataIntegrityError.exit_code == 1


def test_data_verify_prints_ok_the_digest_and_the_time(recorded, capsys):
    data_dir, version_dir, digest = recorded
    assert main(["data", "verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {version_dir}: ") and f"checksum sha256:{digest}" in out and " s (" in out


def test_data_verify_names_the_damaged_file_and_exits_1(recorded, capsys):
    data_dir, version_dir, _ = recorded
    with open(version_dir / TRAIN, "r+b") as f:
        f.truncate(10)
    assert main(["data", "verify", "--data-dir", str(data_dir)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and f"{version_dir / TRAIN}: truncated" in captured.err


def test_data_verify_defaults_to_the_environment(recorded, capsys, monkeypatch):
    data_dir, _, digest = recorded
    monkeypatch.setenv("HEPBENCH_DATA_DIR", str(data_dir))
    assert main(["data", "verify"]) == 0
    assert digest in capsys.readouterr().out
