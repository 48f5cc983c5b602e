"""Data-parallel steps equal one process's step on the combined batch (own processes: logical
devices and Horovod ranks must be set up before TensorFlow starts)."""

from __future__ import annotations

import os
import sys

import pytest

from tests.worker_results import run_workers

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def results(cmd: list[str], names: list[str]) -> list[dict]:
    """The workers' results, one per name (a file each: tests/worker_results.py)."""
    r, found = run_workers(cmd, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(found) == names, r.stdout[-3000:] + r.stderr[-3000:]
    return [found[name] for name in names]


def test_mirrored_strategy_over_two_logical_cpus_equals_the_combined_batch():
    (out,) = results([sys.executable, "-m", "tests.mlpf.train.distributed_check", "mirrored"], ["mirrored"])
    assert out["replicas"] == 2
    assert out["max_weight_difference"] < 1e-4  # float32 summation order differs, nothing else
    assert out["loss"] == pytest.approx(out["expected_loss"], rel=1e-5)


def test_horovod_two_ranks_equal_the_combined_batch():
    pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make setup` (second step)")
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    outs = results(
        [
            horovodrun,
            "-np",
            "2",
            "--gloo",
            "-H",
            "localhost:2",
            sys.executable,
            "-m",
            "tests.mlpf.train.distributed_check",
            "horovod",
        ],
        ["rank-0", "rank-1"],
    )
    assert sorted(o["rank"] for o in outs) == [0, 1]
    for out in outs:  # both ranks hold the same weights, equal to the single-process result
        assert out["max_weight_difference"] < 1e-4
        assert out["loss"] == pytest.approx(out["expected_loss"], rel=1e-5)
