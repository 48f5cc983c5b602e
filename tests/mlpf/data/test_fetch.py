"""fetch() against a real local HTTP server that speaks Zenodo's record format and Range requests."""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hepbench.core.errors import DataFormatError, FetchError
from hepbench.mlpf.data.delphes import read_file
from hepbench.mlpf.data.fetch import USER_AGENT, fetch
from hepbench.mlpf.data.format import published_names

RECORD_PATH = "/api/records/4559324"
NAMES = published_names("ttbar", 2) + published_names("qcd", 1)


class FakeZenodo:
    """Serves a record and its files; knobs make chosen files misbehave."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.record_format = "list"  # or "entries-list", "entries-dict" (InvenioRDM)
        self.hidden: set[str] = set()  # names left out of the record
        self.fail_first: dict[str, int] = {}  # name -> answer this many requests with 503
        self.cut_first: dict[str, int] = {}  # name -> cut this many responses after half the file
        self.corrupt: set[str] = set()  # names served with one byte flipped
        self.ignore_range = False
        self.record_requests = 0
        self.requests: list[tuple[str, str | None, int]] = []  # (name, Range header, status)
        self.user_agents: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.record_url = self.base + RECORD_PATH
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def file_requests(self, name: str) -> list[tuple[str | None, int]]:
        return [(rng, status) for n, rng, status in self.requests if n == name]

    def record(self) -> dict:
        entries = []
        for name, data in self.files.items():
            if name in self.hidden:
                continue
            url = f"{self.base}{RECORD_PATH}/files/{name}/content"
            links = {"self": url} if self.record_format == "list" else {"self": url + "-metadata", "content": url}
            entries.append(
                {"key": name, "size": len(data), "checksum": "md5:" + hashlib.md5(data).hexdigest(), "links": links}
            )
        if self.record_format == "list":
            return {"id": 4559324, "files": entries}
        if self.record_format == "entries-list":
            return {"id": "4559324", "files": {"enabled": True, "entries": entries}}
        return {"id": "4559324", "files": {"enabled": True, "entries": {e["key"]: e for e in entries}}}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                fake.user_agents.append(self.headers.get("User-Agent", ""))
                if self.path == RECORD_PATH:
                    fake.record_requests += 1
                    return self._send(200, json.dumps(fake.record()).encode(), {"Content-Type": "application/json"})
                prefix = RECORD_PATH + "/files/"
                name = self.path[len(prefix) : -len("/content")] if self.path.startswith(prefix) else None
                if name not in fake.files:
                    return self._send(404, b"not found")
                with fake._lock:
                    fail = fake.fail_first.get(name, 0) > 0
                    if fail:
                        fake.fail_first[name] -= 1
                    cut = not fail and fake.cut_first.get(name, 0) > 0
                    if cut:
                        fake.cut_first[name] -= 1
                rng = self.headers.get("Range")
                data = fake.files[name]
                if name in fake.corrupt:
                    data = data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:]
                if fail:
                    fake.requests.append((name, rng, 503))
                    return self._send(503, b"busy")
                start = int(rng[len("bytes=") : -1]) if rng and not fake.ignore_range else None
                if start is not None and start >= len(data):
                    fake.requests.append((name, rng, 416))
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                status, body, headers = 200, data, {}
                if start is not None:
                    status, body = 206, data[start:]
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                fake.requests.append((name, rng, status))
                if cut:  # promise the whole body, deliver half, hang up
                    self._send(status, body[: len(data) // 2], headers, length=len(body))
                    self.close_connection = True
                    return
                self._send(status, body, headers)

            def _send(self, status, body, headers=None, length=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def served(tmp_path, write_events):
    """The bytes of 2 ttbar + 1 qcd valid data files, under their published names."""
    src = tmp_path / "served"
    src.mkdir()
    files = {}
    for seed, name in enumerate(NAMES):
        write_events(src / name, count=3, seed=seed)
        files[name] = (src / name).read_bytes()
    return files


@pytest.fixture
def zenodo(served):
    fake = FakeZenodo(served)
    yield fake
    fake.close()


def run_fetch(fake: FakeZenodo, out: Path, ttbar: int = 2, qcd: int = 1, **kw) -> list[Path]:
    kw.setdefault("backoff", 0)
    kw.setdefault("timeout", 5)
    return fetch(out, ttbar, qcd, record_url=fake.record_url, **kw)


def assert_complete(out: Path, served: dict[str, bytes]) -> None:
    for name, data in served.items():
        assert (out / name).read_bytes() == data
        assert len(read_file(out / name)) == 3
    assert not list(out.glob("*.part"))


@pytest.mark.parametrize("record_format", ["list", "entries-list", "entries-dict"])
def test_downloads_all_files_byte_identical(zenodo, served, tmp_path, record_format):
    zenodo.record_format = record_format
    messages = []
    paths = run_fetch(zenodo, tmp_path / "out", progress=messages.append)
    assert paths == [tmp_path / "out" / n for n in NAMES]
    assert_complete(tmp_path / "out", served)
    for name in NAMES:
        assert zenodo.file_requests(name) == [(None, 200)]
    assert set(zenodo.user_agents) == {USER_AGENT}
    assert any("MB/s" in m and NAMES[0] in m for m in messages)


def test_resumes_a_partial_download_with_a_range_request(zenodo, served, tmp_path):
    out, name = tmp_path / "out", NAMES[0]
    out.mkdir()
    half = len(served[name]) // 2
    (out / f"{name}.part").write_bytes(served[name][:half])
    run_fetch(zenodo, out)
    assert zenodo.file_requests(name) == [(f"bytes={half}-", 206)]
    assert_complete(out, served)


def test_transient_503s_are_retried(zenodo, served, tmp_path):
    zenodo.fail_first[NAMES[1]] = 2
    run_fetch(zenodo, tmp_path / "out", retries=4)
    assert [s for _, s in zenodo.file_requests(NAMES[1])] == [503, 503, 200]
    assert_complete(tmp_path / "out", served)


def test_permanent_failure_gives_up_after_retries(zenodo, tmp_path):
    zenodo.fail_first[NAMES[0]] = 100
    with pytest.raises(FetchError, match=rf"{NAMES[0]}.*3 attempts.*503"):
        run_fetch(zenodo, tmp_path / "out", retries=2)
    assert len(zenodo.file_requests(NAMES[0])) == 3
    assert not (tmp_path / "out" / NAMES[0]).exists()


def test_connection_cut_mid_file_is_resumed(zenodo, served, tmp_path):
    name = NAMES[2]
    zenodo.cut_first[name] = 1
    run_fetch(zenodo, tmp_path / "out")
    half = len(served[name]) // 2
    assert zenodo.file_requests(name) == [(None, 200), (f"bytes={half}-", 206)]
    assert_complete(tmp_path / "out", served)


def test_checksum_mismatch_leaves_nothing_behind(zenodo, served, tmp_path):
    out, name = tmp_path / "out", NAMES[0]
    zenodo.corrupt.add(name)
    expected = hashlib.md5(served[name]).hexdigest()
    with pytest.raises(FetchError, match=rf"{name}: md5 mismatch: expected {expected}, got [0-9a-f]{{32}}"):
        run_fetch(zenodo, out)
    assert not (out / name).exists()
    assert not (out / f"{name}.part").exists()


def test_server_ignoring_range_still_gives_a_correct_file(zenodo, served, tmp_path):
    out, name = tmp_path / "out", NAMES[0]
    out.mkdir()
    (out / f"{name}.part").write_bytes(b"junk that is not a prefix of the file")
    zenodo.ignore_range = True
    run_fetch(zenodo, out)
    assert zenodo.file_requests(name) == [("bytes=37-", 200)]
    assert_complete(out, served)


def test_files_already_present_are_not_downloaded_again(zenodo, served, tmp_path):
    out = tmp_path / "out"
    run_fetch(zenodo, out)
    zenodo.requests.clear()
    messages = []
    assert run_fetch(zenodo, out, progress=messages.append) == [out / n for n in NAMES]
    assert zenodo.requests == []
    assert sum("up to date" in m for m in messages) == 3
    assert_complete(out, served)


def test_a_damaged_present_file_is_downloaded_again(zenodo, served, tmp_path):
    out, name = tmp_path / "out", NAMES[1]
    run_fetch(zenodo, out)
    (out / name).write_bytes(b"\0" * len(served[name]))
    zenodo.requests.clear()
    run_fetch(zenodo, out)
    assert [n for n, _, _ in zenodo.requests] == [name]
    assert_complete(out, served)


def test_unreachable_record_fails_fast_and_points_to_synth(tmp_path):
    began = time.monotonic()
    with pytest.raises(FetchError, match="could not reach Zenodo") as info:
        fetch(tmp_path / "out", 1, 0, record_url="http://127.0.0.1:1/", retries=4, backoff=10)
    assert time.monotonic() - began < 5
    assert "hepbench data synth" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_http_error_on_record_names_the_status(zenodo, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(tmp_path / "out", 1, 0, record_url=zenodo.base + "/api/records/0", backoff=0)


def test_file_missing_from_record_is_named(zenodo, tmp_path):
    zenodo.hidden.add(NAMES[2])
    with pytest.raises(FetchError, match=f"no file named {NAMES[2]}"):
        run_fetch(zenodo, tmp_path / "out")
    assert zenodo.requests == []  # checked before any download starts


@pytest.mark.parametrize(
    "ttbar, qcd, message",
    [
        (-1, 1, "ttbar_files .* 0 to 500"),
        (501, 0, "ttbar_files"),
        (1, 51, "qcd_files .* 0 to 50"),
        (0, 0, "both 0"),
        (1.5, 0, "whole number"),
    ],
)
def test_invalid_counts_fail_before_any_request(zenodo, tmp_path, ttbar, qcd, message):
    with pytest.raises(FetchError, match=message):
        run_fetch(zenodo, tmp_path / "out", ttbar, qcd)
    assert zenodo.record_requests == 0


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_file_with_right_checksum_is_refused_and_never_run(zenodo, served, tmp_path):
    name, marker = NAMES[2], tmp_path / "pwned"
    payload = {"X": [_Exploit(marker)], "ygen": [], "ycand": []}
    zenodo.files[name] = bz2.compress(pickle.dumps(payload, protocol=4))
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=rf"{name}.*refusing to load global"):
        run_fetch(zenodo, out)
    assert not marker.exists()
    assert not (out / name).exists()
    assert not (out / f"{name}.part").exists()
    assert [(n, s) for n, _, s in zenodo.requests] == [(n, 200) for n in NAMES]  # md5 passed; the reader refused it
