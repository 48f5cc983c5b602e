"""Fixtures shared across the test packages: small valid events in the published layout (without
running the generator), and a small built data set with a tiny model configuration, so that real
benchmark runs (tests/mlpf/run, tests/hpo, tests/examples) take seconds."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.caches import CACHES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's compiled programs, kept between test sessions like the suite's other caches
# (docs/development.md, "Caches"): without it every JAX process of the suite (the runs, the parity and
# node-stack checks) compiles the same steps again, two thirds of a tiny JAX run's CPU time. Every
# process the tests start inherits it; the key covers the program, jax/jaxlib and the XLA flags.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHES / "jax-compile"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # the tiny model's steps too
# Idle OpenMP threads (PyTorch's, oneDNN's) sleep instead of spinning: on CI's two cores the tests'
# processes outnumber the CPUs, and a spinning thread takes the time another process's work needs
# (12 % of the CPU time of three parity processes side by side). How threads wait is all it changes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hepbench.mlpf.data.delphes import Event, write_file  # noqa: E402
from hepbench.mlpf.data.format import ElementType, XCol, YCol, published_name  # noqa: E402

TINY = """
model: {bin_size: 16, distance_dim: 8, ffn_dist_hidden_dim: 8, output_dim: 16, decoder_hidden_dim: 16,
        num_graph_layers_id: 1, num_graph_layers_reg: 1}
data: {max_elements: 64}
bench: {windows: 2, warmup_steps: 1, cpu_events_per_window: 4, cpu_validation_events: 2, ceiling_seconds: 0.05}
"""


def random_event(rng: np.random.Generator, n: int) -> Event:
    """A valid event with n elements: random features, a mix of towers and tracks; ycand equals ygen."""
    X = rng.normal(size=(n, 12)).astype(np.float32)
    X[:, XCol.TYPE] = rng.choice([ElementType.TOWER, ElementType.TRACK], size=n)
    ygen = rng.normal(size=(n, 7)).astype(np.float32)
    ygen[:, YCol.TYPE] = rng.integers(0, 6, size=n)
    ygen[ygen[:, YCol.TYPE] == 0] = 0.0
    ycand = ygen.copy()
    return Event(X, ygen, ycand)


@pytest.fixture(scope="session", name="random_event")
def random_event_fixture():
    """random_event(rng, n): a valid event with n elements (see the function above)."""
    return random_event


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


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A built delphes_pf (array_record) with 12 train and 4 test events."""
    # Imported here: the TFDS builder pulls in TensorFlow Datasets, which most tests never need.
    from hepbench.mlpf.data.tfds_builder import build

    rng = np.random.default_rng(7)
    manual = tmp_path_factory.mktemp("manual")
    write_file(manual / published_name("ttbar", 0, 0), [random_event(rng, int(n)) for n in rng.integers(5, 60, 12)])
    write_file(manual / published_name("qcd", 10, 0), [random_event(rng, int(n)) for n in rng.integers(5, 60, 4)])
    data_dir = tmp_path_factory.mktemp("tfds")
    build(manual, data_dir)
    return data_dir


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    """A config file: a one-graph-layer model on 64 elements, two windows of 4 events."""
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(TINY)
    return path
