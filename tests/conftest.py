"""Shared fixtures: small valid events in the published layout, without running the generator."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hepbench.mlpf.data.delphes import Event, write_file  # noqa: E402
from hepbench.mlpf.data.format import ElementType, XCol, YCol  # noqa: E402


def random_event(rng: np.random.Generator, n: int) -> Event:
    """A valid event with n elements: random features, a mix of towers and tracks."""
    X = rng.normal(size=(n, 12)).astype(np.float32)
    X[:, XCol.TYPE] = rng.choice([ElementType.TOWER, ElementType.TRACK], size=n)
    ygen = rng.normal(size=(n, 7)).astype(np.float32)
    ygen[:, YCol.TYPE] = rng.integers(0, 6, size=n)
    ygen[ygen[:, YCol.TYPE] == 0] = 0.0
    ycand = ygen.copy()
    return Event(X, ygen, ycand)


@pytest.fixture
def make_events():
    def make(count: int, seed: int = 0, low: int = 5, high: int = 50) -> list[Event]:
        rng = np.random.default_rng(seed)
        return [random_event(rng, int(rng.integers(low, high))) for _ in range(count)]

    return make


@pytest.fixture
def write_events(make_events):
    """write_events(path, count, seed) writes a valid file and returns its events."""

    def write(path, count: int = 3, seed: int = 0, **kw) -> list[Event]:
        events = make_events(count, seed, **kw)
        write_file(path, events)
        return events

    return write
