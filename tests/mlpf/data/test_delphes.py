"""The safe reader: round trip, refusal of executable pickles, and one clear error per defect."""

from __future__ import annotations

import bz2
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from hepbench.core.errors import DataFormatError
from hepbench.mlpf.data.delphes import Event, load_pickle, read_file, write_file


def _write_raw(path: Path, obj, protocol: int = 4) -> Path:
    path.write_bytes(bz2.compress(pickle.dumps(obj, protocol=protocol)))
    return path


def _content(events):
    return {k: [getattr(e, k) for e in events] for k in ("X", "ygen", "ycand")}


def test_round_trip(tmp_path, write_events):
    events = write_events(tmp_path / "f.pkl.bz2", count=4)
    back = read_file(tmp_path / "f.pkl.bz2")
    assert len(back) == 4
    for a, b in zip(events, back):
        for key in ("X", "ygen", "ycand"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
            assert getattr(b, key).dtype == np.float32


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_all_pickle_protocols_read(tmp_path, make_events, protocol):
    events = make_events(2)
    back = read_file(_write_raw(tmp_path / "f.pkl.bz2", _content(events), protocol))
    np.testing.assert_array_equal(back[1].X, events[1].X)


def test_numpy1_module_names_are_understood(tmp_path, make_events):
    # Files written with numpy 1.x (all of Zenodo's) name numpy.core, not numpy._core.
    raw = pickle.dumps(_content(make_events(2)), protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    (tmp_path / "f.pkl.bz2").write_bytes(bz2.compress(raw))
    assert len(read_file(tmp_path / "f.pkl.bz2")) == 2


class _Exploit:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("kind", ["os.system", "eval", "subprocess"])
def test_malicious_pickle_is_refused_without_running(tmp_path, kind, protocol):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    if kind == "os.system":
        payload = _Exploit(os.system, command)
    elif kind == "eval":
        payload = _Exploit(eval, f"__import__('os').system({command!r})")
    else:
        import subprocess

        payload = _Exploit(subprocess.call, ["touch", str(marker)])
    path = _write_raw(tmp_path / "evil.pkl.bz2", {"X": [payload], "ygen": [], "ycand": []}, protocol)
    with pytest.raises(DataFormatError, match=r"evil\.pkl\.bz2: refusing to load global"):
        read_file(path)
    assert not marker.exists()
    # The test is only meaningful if the payload really would run under plain pickle.
    pickle.loads(bz2.decompress(path.read_bytes()))
    assert marker.exists()


def test_truncated_file(tmp_path, write_events):
    path = tmp_path / "f.pkl.bz2"
    write_events(path, count=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"f\.pkl\.bz2: truncated"):
        read_file(path)


def test_corrupt_bz2(tmp_path):
    path = tmp_path / "f.pkl.bz2"
    path.write_bytes(b"BZh9" + bytes(range(256)) * 10)
    with pytest.raises(DataFormatError, match=r"f\.pkl\.bz2: not a valid bz2 file"):
        read_file(path)


def test_not_bz2_at_all(tmp_path):
    path = tmp_path / "f.pkl.bz2"
    path.write_bytes(pickle.dumps({"X": []}))
    with pytest.raises(DataFormatError, match="not a valid bz2 file"):
        read_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        read_file(tmp_path / "absent.pkl.bz2")


def test_decompression_limit(tmp_path, write_events):
    path = tmp_path / "f.pkl.bz2"
    write_events(path, count=3)
    with pytest.raises(DataFormatError, match="decompressed size exceeds the limit"):
        load_pickle(path, max_bytes=1000)


def _broken(make_events, **change) -> dict:
    events = make_events(3)
    content = _content(events)
    for key, (index, value) in change.items():
        content[key][index] = value
    return content


def _expect(tmp_path, content, pattern):
    path = _write_raw(tmp_path / "bad.pkl.bz2", content)
    with pytest.raises(DataFormatError, match=pattern):
        read_file(path)


def test_misshaped_X(tmp_path, make_events):
    x = np.zeros((10, 11), np.float32)
    _expect(tmp_path, _broken(make_events, X=(1, x)), r"event 1: X has shape \(10, 11\), expected \(N, 12\)")


def test_rows_not_aligned(tmp_path, make_events):
    content = _broken(make_events)
    content["ygen"][2] = content["ygen"][2][:-1]
    _expect(tmp_path, content, r"event 2: ygen has \d+ rows but X has \d+; they must be row-aligned")


def test_wrong_dtype(tmp_path, make_events):
    content = _broken(make_events)
    content["ycand"][0] = content["ycand"][0].astype(np.float64)
    _expect(tmp_path, content, "event 0: ycand has dtype float64, expected float32")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(tmp_path, make_events, bad):
    content = _broken(make_events)
    content["X"][1][3, 5] = bad
    _expect(tmp_path, content, r"event 1: X has a non-finite value \((nan|inf)\) at row 3, column 5")


@pytest.mark.parametrize("bad", [6.0, -1.0, 2.5])
def test_unknown_class(tmp_path, make_events, bad):
    content = _broken(make_events)
    content["ygen"][2][4, 0] = bad
    _expect(tmp_path, content, r"event 2: ygen row 4 has class id .*expected an integer 0..5")


def test_unknown_element_type(tmp_path, make_events):
    content = _broken(make_events)
    content["X"][0][7, 0] = 3.0
    _expect(tmp_path, content, r"event 0: X row 7 has element type 3")


def test_padding_row_with_features(tmp_path, make_events):
    content = _broken(make_events)
    content["X"][0][2, 0] = 0.0
    content["X"][0][2, 1] = 5.0
    _expect(tmp_path, content, r"X row 2 has element type 0 \(padding\) but non-zero features")


def test_all_zero_padding_rows_are_accepted(tmp_path, make_events):
    content = _broken(make_events)
    content["X"][0][:3] = 0.0
    assert len(read_file(_write_raw(tmp_path / "ok.pkl.bz2", content))) == 3


@pytest.mark.parametrize(
    "content, pattern",
    [
        ([1, 2], "top level is a list"),
        ({"X": [], "ygen": []}, r"missing key\(s\) \['ycand'\]"),
        ({"X": [], "ygen": [], "ycand": {}}, "'ycand' is a dict, expected a list"),
        ({"X": [np.zeros((1, 12), np.float32)], "ygen": [], "ycand": []}, "different numbers of events"),
        ({"X": ["text"], "ygen": ["a"], "ycand": ["b"]}, "X is a str, expected a numpy array"),
    ],
)
def test_bad_structure(tmp_path, content, pattern):
    _expect(tmp_path, content, pattern)


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_failed_write_leaves_nothing(tmp_path, make_events):
    events = make_events(2)
    bad = events + [Event(events[0].X, events[0].ygen, _Unpicklable())]
    with pytest.raises(RuntimeError, match="cannot pickle this"):
        write_file(tmp_path / "out.pkl.bz2", bad)
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_atomically(tmp_path, make_events):
    path = tmp_path / "out.pkl.bz2"
    write_file(path, make_events(1, seed=1))
    write_file(path, make_events(2, seed=2))
    assert len(read_file(path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.pkl.bz2"]
