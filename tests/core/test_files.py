"""Atomic writes, JSON without NaN, and the writable-directory check."""

from __future__ import annotations

import json
import math

import pytest

from hepbench.core.errors import UsageError
from hepbench.core.files import atomic_open, check_writable_dir, write_json


class Boom(RuntimeError):
    pass


def test_a_failing_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(Boom, match="mid-write"):  # the writer's own error, passed on
        with atomic_open(target, "w") as f:
            f.write("half")
            raise Boom("mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(Boom, match="mid-write"):
        with atomic_open(target, "w") as f:
            f.write("new")
            raise Boom("mid-write")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


def test_a_successful_write_replaces_the_file_and_creates_its_directory(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    with atomic_open(target) as f:
        f.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and list(target.parent.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_json_writes_indented_json_and_a_newline(tmp_path):
    write_json(tmp_path / "a.json", {"b": [1, 2]})
    assert (tmp_path / "a.json").read_text() == '{\n  "b": [\n    1,\n    2\n  ]\n}\n'
    write_json(tmp_path / "c.json", {"b": 1}, indent=1)
    assert (tmp_path / "c.json").read_text() == '{\n "b": 1\n}\n'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_write_json_refuses_nan_and_infinity_and_writes_nothing(tmp_path, bad):
    target = tmp_path / "a.json"
    target.write_text('{"ok": true}\n')
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json(target, {"score": bad})
    assert json.loads(target.read_text()) == {"ok": True} and list(tmp_path.iterdir()) == [target]


def test_check_writable_dir_creates_the_directory(tmp_path):
    check_writable_dir(tmp_path / "new" / "dir", "results directory")
    assert (tmp_path / "new" / "dir").is_dir() and list((tmp_path / "new" / "dir").iterdir()) == []


def test_check_writable_dir_names_what_and_where_when_it_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError) as e:
        check_writable_dir(blocker / "sub", "--resultsdir")
    assert str(e.value).startswith(f"--resultsdir {blocker / 'sub'} is not writable: ")
    assert e.value.exit_code == 2
