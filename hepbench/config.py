"""Typed configuration: dataclasses filled from YAML, reference defaults in `defaults.yaml`.

`load_config()` gives the packaged defaults; a user file or `section.key=value` overrides replace
single values. Unknown keys and wrongly typed values are errors that name the file and the key.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hepbench.errors import UsageError

CACHE_MODES = ("none", "memory")
TARGETS = ("gen", "cand")


@dataclass(frozen=True)
class DataConfig:
    """How events become batches (hepbench.data.pipeline)."""

    bin_size: int = 640  # events are padded to a multiple of this (the graph layers' bin size)
    max_elements: int = 6400  # longer events are truncated, as upstream did
    pad_to_max: bool = False  # pad every event to max_elements (one fixed shape, upstream 1.0.0)
    batch_size: int = 2  # events per device and step
    target: str = "gen"  # "gen" (generator truth) or "cand" (Delphes rule-based PF candidates)
    shuffle_buffer: int = 0  # 0 keeps the dataset order
    cache: str = "none"  # "none", "memory" or a file path prefix for tf.data's cache
    prefetch: int = -1  # batches prefetched; -1 lets tf.data tune it
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("bin_size", "max_elements", "batch_size"):
            if getattr(self, name) <= 0:
                raise UsageError(f"data.{name} must be positive, not {getattr(self, name)}")
        if self.shuffle_buffer < 0:
            raise UsageError(f"data.shuffle_buffer must be >= 0, not {self.shuffle_buffer}")
        if self.prefetch < -1:
            raise UsageError(f"data.prefetch must be -1 (auto) or >= 0, not {self.prefetch}")
        if self.target not in TARGETS:
            raise UsageError(f"data.target must be one of {TARGETS}, not {self.target!r}")
        if not self.cache:
            raise UsageError("data.cache must be 'none', 'memory' or a file path prefix, not empty")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)


def _coerce(value: Any, tp: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, source, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this loader does not know is a programming error
        raise TypeError(f"unsupported config type {tp}")
    raise UsageError(f"{source}: {key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")


def _from_dict(cls: type, data: Any, source: str, prefix: str = "") -> Any:
    where = f"{source}: {prefix}" if prefix else source
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], source, f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except UsageError as e:  # a value check in __post_init__: say where the value came from
        raise UsageError(f"{source}: {e}") from None


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"{where}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_override(text: str) -> dict:
    """`data.bin_size=320` → {"data": {"bin_size": 320}} (the value is read as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UsageError(f"override {text!r}: expected section.key=value")
    out: dict = _read_yaml(f"v: {value}" if value else "v: ''", f"override {text!r}")["v"]
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Packaged defaults, then the file at `path`, then `section.key=value` overrides."""
    data = _read_yaml(resources.files("hepbench").joinpath("defaults.yaml").read_text(), "defaults.yaml")
    where = "defaults.yaml"
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise UsageError(f"config file {path}: {e.strerror}") from None
        data = _merge(data, _read_yaml(text, str(path)))
        where = str(path)
    for text in overrides or []:
        data = _merge(data, parse_override(text))
        where = f"{where} (with overrides)"
    return _from_dict(Config, data, where)
