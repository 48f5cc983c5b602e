"""How a run is laid out before anything starts: device choice, CPU sets, GPUs, per-copy sizes."""
from __future__ import annotations

from pathlib import Path

import pytest

from hepbench.mlpf.config import load_config
from hepbench.core.errors import UsageError
from hepbench.mlpf.run.benchmark import RunOptions, _child_env, plan_copies, resolve_device, split_cpus


def options(**kw) -> RunOptions:
    return RunOptions(config=load_config(), data_dir=Path("data"), results_dir=Path("results"), **kw)


@pytest.mark.parametrize("cpus, copies, expected", [
    ([0, 1], 2, [[0], [1]]),
    ([0, 1, 2, 3, 4], 2, [[0, 1, 2], [3, 4]]),
    ([4, 5, 8, 9], 3, [[4, 5], [8], [9]]),  # the CPUs this process may use, not 0..n-1
    ([0, 1, 2, 3], 1, [[0, 1, 2, 3]]),
])
def test_cpu_sets_are_disjoint_contiguous_and_cover_everything(cpus, copies, expected):
    assert split_cpus(cpus, copies) == expected


def test_more_copies_than_cpus_is_refused():
    with pytest.raises(UsageError, match="--copies 3 needs at least 3 CPUs; this process may use 2"):
        split_cpus([0, 1], 3)


def test_device_resolution():
    assert resolve_device("auto", []) == "cpu"
    assert resolve_device("auto", ["0"]) == "gpu"
    assert resolve_device("cpu", ["0"]) == "cpu"
    with pytest.raises(UsageError, match="TensorFlow sees no GPU"):
        resolve_device("gpu", [])


def test_cpu_copies_get_their_cpu_sets_threads_and_the_cpu_sizes():
    specs = plan_copies(options(copies=2), "cpu", [], [0, 1, 2, 3])
    assert [s.cpus for s in specs] == [[0, 1], [2, 3]] and [s.threads for s in specs] == [2, 2]
    assert {s.events_per_window for s in specs} == {24} and {s.validation_events for s in specs} == {8}
    assert [s.gpu_index for s in specs] == [None, None]
    assert _child_env(specs[0], gpus_present=True)["CUDA_VISIBLE_DEVICES"] == ""
    assert _child_env(specs[0], gpus_present=True)["OMP_NUM_THREADS"] == "2"


def test_gpu_copies_get_one_gpu_each_and_the_gpu_sizes():
    # CUDA_VISIBLE_DEVICES=2,5 outside: the copies must use GPUs 2 and 5, not 0 and 1.
    specs = plan_copies(options(copies=2, threads=3, events=500), "gpu", ["2", "5"], list(range(8)))
    assert [s.gpu_index for s in specs] == [2, 5] and [s.threads for s in specs] == [3, 3]
    assert [s.cpus for s in specs] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert {s.events_per_window for s in specs} == {500} and {s.validation_events for s in specs} == {200}
    assert [_child_env(s, gpus_present=True)["CUDA_VISIBLE_DEVICES"] for s in specs] == ["2", "5"]
    with pytest.raises(UsageError, match="needs 3 GPUs"):
        plan_copies(options(copies=3), "gpu", ["0", "1"], list(range(8)))
