"""Safe reading, validation and writing of the published `.pkl.bz2` event files.

Pickle runs code on load, so these files are read with a restricted unpickler that can only
rebuild numpy arrays, their dtypes and plain containers. Every event is validated before it is
handed on; an error names the file, the event and the problem.
"""

from __future__ import annotations

import bz2
import collections
import io
import itertools
import os
import pickle
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepbench.core.errors import DataFormatError
from hepbench.core.files import atomic_open
from hepbench.mlpf.data.format import KEYS, NUM_CLASSES, NUM_X_FEATURES, NUM_Y_FEATURES, ElementType, XCol, YCol

# A published file is ~50 MB compressed; anything that inflates far beyond that is not one.
DEFAULT_MAX_DECOMPRESSED = 2 << 30
PICKLE_PROTOCOL = 4


@dataclass(frozen=True)
class Event:
    X: np.ndarray  # (N, 12) float32
    ygen: np.ndarray  # (N, 7) float32
    ycand: np.ndarray  # (N, 7) float32

    @property
    def num_elements(self) -> int:
        return int(self.X.shape[0])


def _numpy_attr(modules: tuple[str, ...], name: str):
    for mod in modules:
        obj = np
        try:
            for part in mod.split(".")[1:]:
                obj = getattr(obj, part)
            return getattr(obj, name)
        except AttributeError:
            continue
    raise ImportError(f"numpy has no {name} in {modules}")


# numpy 1.x pickles name numpy.core, numpy 2.x numpy._core; both map to this numpy's functions.
_reconstruct = _numpy_attr(("numpy._core.multiarray", "numpy.core.multiarray"), "_reconstruct")
_frombuffer = _numpy_attr(("numpy._core.numeric", "numpy.core.numeric"), "_frombuffer")


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1'); allow exactly that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode with anything but (str, 'latin1')")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': only numpy arrays and plain "
                "containers are allowed in a data file"
            ) from None


class _LimitedReader(io.RawIOBase):
    """Stops a decompression bomb: at most `limit` bytes may come out of the stream."""

    def __init__(self, raw, limit: int):
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self._raw.readinto(memoryview(buf)[: max(0, min(len(buf), self._left + 1))])
        self._left -= n
        if self._left < 0:
            raise DataFormatError("decompressed size exceeds the limit")
        return n


def load_pickle(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> object:
    """Unpickle a bz2 file with the restricted unpickler; errors name the file."""
    path = Path(path)
    try:
        with bz2.open(path, "rb") as compressed:
            stream = io.BufferedReader(_LimitedReader(compressed, max_bytes), 1 << 20)
            return _RestrictedUnpickler(stream).load()
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except DataFormatError as e:
        raise DataFormatError(f"{path}: {e} ({max_bytes} bytes)") from None
    except EOFError:
        raise DataFormatError(f"{path}: truncated file (the bz2 or pickle stream ends early)") from None
    except OSError as e:
        raise DataFormatError(f"{path}: not a valid bz2 file ({e})") from None
    except pickle.UnpicklingError as e:
        raise DataFormatError(f"{path}: {e}") from None
    except Exception as e:  # malformed pickle opcodes surface as assorted exception types
        raise DataFormatError(f"{path}: corrupt pickle data ({type(e).__name__}: {e})") from None


def _check_array(a: object, key: str, width: int, where: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise DataFormatError(f"{where}: {key} is a {type(a).__name__}, expected a numpy array")
    if a.dtype != np.float32:
        raise DataFormatError(f"{where}: {key} has dtype {a.dtype}, expected float32")
    if a.ndim != 2 or a.shape[1] != width:
        raise DataFormatError(f"{where}: {key} has shape {a.shape}, expected (N, {width})")
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataFormatError(f"{where}: {key} has a non-finite value ({a[row, col]}) at row {row}, column {col}")
    return a


def validate_event(X: object, ygen: object, ycand: object, where: str) -> Event:
    """Check one event against the published format; raise DataFormatError naming the problem."""
    X = _check_array(X, "X", NUM_X_FEATURES, where)
    ygen = _check_array(ygen, "ygen", NUM_Y_FEATURES, where)
    ycand = _check_array(ycand, "ycand", NUM_Y_FEATURES, where)
    n = X.shape[0]
    for key, y in (("ygen", ygen), ("ycand", ycand)):
        if y.shape[0] != n:
            raise DataFormatError(f"{where}: {key} has {y.shape[0]} rows but X has {n}; they must be row-aligned")

    types = X[:, XCol.TYPE]
    real = types != ElementType.PADDING
    bad = real & (types != ElementType.TOWER) & (types != ElementType.TRACK)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFormatError(
            f"{where}: X row {row} has element type {types[row]:g}; "
            "expected 1 (tower), 2 (track) or an all-zero padding row"
        )
    bad = ~real & X.any(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFormatError(f"{where}: X row {row} has element type 0 (padding) but non-zero features")

    for key, y in (("ygen", ygen), ("ycand", ycand)):
        cls = y[:, YCol.TYPE]
        bad = (cls != np.round(cls)) | (cls < 0) | (cls >= NUM_CLASSES)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFormatError(
                f"{where}: {key} row {row} has class id {cls[row]:g}; expected an integer 0..{NUM_CLASSES - 1}"
            )
    return Event(X, ygen, ycand)


def validate_file_content(content: object, path: str | os.PathLike) -> list[Event]:
    if not isinstance(content, dict):
        raise DataFormatError(f"{path}: top level is a {type(content).__name__}, expected a dict with keys {KEYS}")
    missing = [k for k in KEYS if k not in content]
    if missing:
        raise DataFormatError(f"{path}: missing key(s) {missing}; expected {list(KEYS)}")
    lists = [content[k] for k in KEYS]
    for k, v in zip(KEYS, lists):
        if not isinstance(v, (list, tuple)):
            raise DataFormatError(f"{path}: '{k}' is a {type(v).__name__}, expected a list of per-event arrays")
    if len({len(v) for v in lists}) != 1:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in zip(KEYS, lists))
        raise DataFormatError(f"{path}: the keys hold different numbers of events ({counts})")
    return [validate_event(x, yg, yc, f"{path}: event {i}") for i, (x, yg, yc) in enumerate(zip(*lists))]


def read_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> list[Event]:
    """Read and validate all events of one `.pkl.bz2` file."""
    return validate_file_content(load_pickle(path, max_bytes), path)


def read_files(paths: Iterable[str | os.PathLike], jobs: int = 1) -> Iterator[tuple[Path, list[Event]]]:
    """(path, events) for each file, in order; with jobs > 1 the next files are read ahead in
    threads: bz2 decompression, which sets the pace, runs without the GIL."""
    paths = [Path(p) for p in paths]
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield path, read_file(path)
        return
    with ThreadPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        pending: collections.deque = collections.deque()
        ahead = iter(paths)
        for path in itertools.islice(ahead, jobs + 1):  # bounded read-ahead keeps memory in check
            pending.append((path, pool.submit(read_file, path)))
        while pending:
            path, future = pending.popleft()
            events = future.result()
            for nxt in itertools.islice(ahead, 1):
                pending.append((nxt, pool.submit(read_file, nxt)))
            yield path, events


def write_file(path: str | os.PathLike, events: list[Event], compresslevel: int = 9) -> None:
    """Write events in the published layout, atomically (temporary file, then rename)."""
    content = {
        "X": [e.X for e in events],
        "ygen": [e.ygen for e in events],
        "ycand": [e.ycand for e in events],
    }
    with atomic_open(path, "wb") as raw:
        with bz2.BZ2File(raw, "wb", compresslevel=compresslevel) as f:
            pickle.dump(content, f, protocol=PICKLE_PROTOCOL)
