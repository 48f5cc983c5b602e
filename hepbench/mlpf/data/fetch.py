"""Download the published Delphes MLPF files from Zenodo: resumable, retried, verified.

Standard library only, so that fetching data never needs more than the package itself. A file
is written to NAME.part and renamed to NAME only after its size, its checksum from the record
and its content (the safe restricted reader) have been checked, so a final file is never partial.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hepbench.core.errors import DataFormatError, FetchError
from hepbench.mlpf.data.delphes import read_file
from hepbench.mlpf.data.format import QCD_FILE_IDS, TTBAR_FILE_IDS, ZENODO_RECORD, published_names

ZENODO_API = f"https://zenodo.org/api/records/{ZENODO_RECORD}"
USER_AGENT = "hepbench-fetch"
CHUNK = 1 << 20

# Failures of the network or of a busy server, which another attempt may get past.
# (HTTPError is a URLError too; it is handled before these are.)
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ssl.SSLError)


class _Retry(Exception):
    """One attempt failed in a way that a new attempt, resuming from the .part, may not."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    size: int
    algo: str  # hashlib name, "md5" on Zenodo
    digest: str  # lower-case hex


def fetch(
    out_dir: str | os.PathLike,
    ttbar_files: int = 20,
    qcd_files: int = 2,
    *,
    record_url: str = ZENODO_API,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 2.0,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Download the first `ttbar_files` ttbar and `qcd_files` QCD files into `out_dir`.

    Files already there with the right checksum are kept. Returns the final paths, in order.
    """
    names = _requested_names(ttbar_files, qcd_files)  # bad counts fail before any network access
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    say = progress or (lambda message: None)
    out = Path(out_dir)
    remote = _pick_files(_get_record(record_url, timeout, out), names, record_url)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for rf in remote:
        final = out / rf.name
        if final.is_file() and final.stat().st_size == rf.size and _digest(final, rf.algo) == rf.digest:
            say(f"{rf.name}: up to date")
        else:
            _download(rf, out, retries, timeout, backoff, say)
        paths.append(final)
    return paths


def _requested_names(ttbar_files: int, qcd_files: int) -> list[str]:
    for option, count, ids in (("ttbar_files", ttbar_files, TTBAR_FILE_IDS), ("qcd_files", qcd_files, QCD_FILE_IDS)):
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(ids):
            raise FetchError(
                f"{option} must be a whole number from 0 to {len(ids)} (the files published), not {count!r}"
            )
    if ttbar_files == 0 and qcd_files == 0:
        raise FetchError("nothing to fetch: ttbar_files and qcd_files are both 0")
    return published_names("ttbar", ttbar_files) + published_names("qcd", qcd_files)


def _get_record(url: str, timeout: float, out: Path) -> object:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        e.close()
        later = " (Zenodo may be busy or down; try again later)" if e.code >= 500 else ""
        raise FetchError(f"Zenodo answered HTTP {e.code} {e.reason} for {url}{later}") from e
    except (*_TRANSIENT, OSError) as e:
        # No retries: a machine without network will not get one within seconds, and the remedy
        # is offline data, so say so at once instead of after minutes of backoff.
        reason = getattr(e, "reason", None) or e
        raise FetchError(
            f"could not reach Zenodo at {url} ({reason}). No network? Generate data offline with: "
            f"hepbench data synth --process ttbar --events 2000 --out {out}"
        ) from e
    try:
        return json.loads(body)
    except ValueError as e:
        raise FetchError(f"{url} did not answer with a JSON record ({e})") from e


def _pick_files(record: object, names: list[str], url: str) -> list[RemoteFile]:
    """The entries of `names` in the record: the legacy list form or InvenioRDM's entries form."""
    files = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict):  # InvenioRDM: {"entries": [...]} or {"entries": {name: {...}}}
        files = files.get("entries")
    if isinstance(files, dict):
        files = [{"key": key, **entry} for key, entry in files.items() if isinstance(entry, dict)]
    if not isinstance(files, list):
        raise FetchError(f"{url}: the record has no list of files")
    by_name = {e.get("key") or e.get("filename"): e for e in files if isinstance(e, dict)}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise FetchError(f"{url}: the record has no file named {', '.join(missing)}")
    return [_remote_file(name, by_name[name]) for name in names]


def _remote_file(name: str, entry: dict) -> RemoteFile:
    links = entry.get("links") if isinstance(entry.get("links"), dict) else {}
    # InvenioRDM's links.self is the file's metadata and links.content its bytes; the legacy
    # record API has only links.self, and it is the bytes.
    url = links.get("content") or links.get("self")
    algo, _, digest = str(entry.get("checksum", "")).rpartition(":")
    algo, digest = (algo or "md5").lower(), digest.lower()  # older records gave a bare md5
    try:
        size = int(entry["size"])
        hashlib.new(algo)
    except (KeyError, TypeError, ValueError):
        size = -1
    if not url or size < 0 or not re.fullmatch(r"[0-9a-f]{32,128}", digest):
        raise FetchError(f"the record's entry for {name} lacks a download link, a size or a checksum: {entry}")
    return RemoteFile(name, url, size, algo, digest)


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _download(rf: RemoteFile, out: Path, retries: int, timeout: float, backoff: float, say) -> None:
    part = out / f"{rf.name}.part"
    for attempt in range(retries + 1):
        try:
            _transfer(rf, part, timeout, say)
            break
        except _Retry as e:
            if attempt == retries:  # the .part stays, so the next run resumes from it
                raise FetchError(f"{rf.name}: download failed after {attempt + 1} attempts: {e}") from e
            wait = backoff * 2**attempt
            say(f"{rf.name}: {e}; retrying in {wait:g} s")
            time.sleep(wait)
    _verify(rf, part)
    os.replace(part, out / rf.name)
    say(f"{rf.name}: done, {rf.size / 1e6:.1f} MB, checksum and content ok")


def _transfer(rf: RemoteFile, part: Path, timeout: float, say) -> None:
    """One attempt: fetch what the .part still lacks. Raises _Retry for failures worth retrying."""
    have = part.stat().st_size if part.exists() else 0
    if have > rf.size:  # cannot be a prefix of this file: start over
        part.unlink()
        have = 0
    if have and have == rf.size:  # complete already; the checksum decides whether it is right
        return
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with urllib.request.urlopen(urllib.request.Request(rf.url, headers=headers), timeout=timeout) as response:
            if have and response.status == 206:
                start = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
                if not start or int(start.group(1)) != have:
                    part.unlink()
                    raise _Retry(
                        f"server resumed at the wrong offset ({start and start.group(1)}, not {have}); starting over"
                    )
                mode = "ab"
            else:  # 200: the server ignored the Range and sends the whole file
                have, mode = 0, "wb"
            _stream(response, part, mode, have, rf, say)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416:  # the server cannot serve from `have` on: the .part is not a prefix it knows
            part.unlink(missing_ok=True)
            raise _Retry("server refused to resume (HTTP 416); starting over") from e
        if e.code >= 500 or e.code == 429:
            raise _Retry(f"HTTP {e.code} {e.reason}") from e
        raise FetchError(f"{rf.name}: HTTP {e.code} {e.reason} from {rf.url}") from e
    except _TRANSIENT as e:
        raise _Retry(f"{type(e).__name__}: {getattr(e, 'reason', None) or e}") from e


def _stream(response, part: Path, mode: str, start: int, rf: RemoteFile, say) -> None:
    done, began, reported = start, time.monotonic(), start * 10 // max(rf.size, 1)
    with open(part, mode) as f:  # closed on any error, so what arrived stays for the next attempt
        while chunk := response.read(CHUNK):
            f.write(chunk)
            done += len(chunk)
            tenth = done * 10 // max(rf.size, 1)
            if tenth > reported:  # every ~10 %, and at the end
                reported = tenth
                rate = (done - start) / 1e6 / max(time.monotonic() - began, 1e-6)
                say(f"{rf.name}: {done / 1e6:.1f} / {rf.size / 1e6:.1f} MB ({rate:.1f} MB/s)")
    # http.client's read(n) returns b"" when the peer closes early, even with bytes still owed.
    if done < rf.size:
        raise _Retry(f"connection closed after {done} of {rf.size} bytes")


def _verify(rf: RemoteFile, part: Path) -> None:
    """Size, checksum, then content; a .part that fails is removed, as resuming it cannot help."""
    size = part.stat().st_size
    if size != rf.size:
        part.unlink()
        raise FetchError(f"{rf.name}: got {size} bytes, the record says {rf.size}; removed the download")
    actual = _digest(part, rf.algo)
    if actual != rf.digest:
        part.unlink()
        raise FetchError(f"{rf.name}: {rf.algo} mismatch: expected {rf.digest}, got {actual}; removed the download")
    try:
        read_file(part)  # restricted unpickler: a file that would run code is refused, not run
    except DataFormatError as e:
        part.unlink()
        raise DataFormatError(
            f"{rf.name} matches the record's checksum but is not a valid data file, removed it: {e}"
        ) from e
