"""`hepbench run` whose device computes wrongly: every engine's train step made 1 % wrong (its loss,
hence its gradient; tests/mlpf/run/numerics_fault/sitecustomize.py patches each copy process as it
starts) is refused by the numerics check before its clock (hepbench.mlpf.train.numerics), exit 1,
with a failure report whose numerics block and log give both sides' values."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hepbench.core.schema import load_report, validate_report

FAULT = Path(__file__).parent / "numerics_fault"  # its sitecustomize.py: the fault, in every process of the run


def faulty(factor: str) -> dict:
    """Environment entries that make every engine's train step compute its loss times `factor`."""
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULT), os.environ.get("PYTHONPATH")])),
        "HEPBENCH_TEST_FAULT": factor,
    }


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_step_1_percent_wrong_is_refused_before_the_clock_with_both_values(
    hepbench_run, built, tiny_config, tmp_path, backend
):
    r = hepbench_run(
        "--backend",
        backend,
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--device",
        "cpu",
        env=faulty("1.01"),
    )
    assert r.returncode == 1, r.stderr[-3000:]
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "failed" and rep["wl-scores"] == {} and rep["backend"]["name"] == backend
    numerics = rep["numerics"]
    assert (numerics["status"], numerics["arithmetic"], numerics["events"]) == ("failed", "fp32", 2)
    # The device side is the faulty step's: 1 % off the host's, in the loss and in the gradient.
    device, host = numerics["device"], numerics["host"]
    assert device["loss"] / host["loss"] == pytest.approx(1.01, rel=1e-4)
    assert device["grad_norm"] / host["grad_norm"] == pytest.approx(1.01, rel=1e-4)
    assert numerics["relative_difference"]["loss"] > numerics["tolerance"]["loss"]
    # The log names both values; nothing was warmed, stepped or timed.
    for side in (device, host):
        assert f"loss {side['loss']:.9g}, gradient norm {side['grad_norm']:.9g}" in rep["log"]
    assert rep["log"].startswith("copy 0: numerics check failed: the first batch (2 x ")
    (copy,) = rep["copies"]
    assert copy["status"] == "failed" and copy["warmup"] is None and copy["windows"] == []
    assert "FAILED: copy 0: numerics check failed" in r.stdout
    assert "window 1/" not in r.stderr


@pytest.mark.slow
def test_a_ddp_job_whose_rank_0_finds_the_device_wrong_stops_on_every_rank_with_one_report(
    built, tiny_config, tmp_path
):
    # Rank 0 alone checks; the other rank follows its verdict (Engine.from_rank0, a broadcast), so the
    # job ends at once, before any collective step, with one report giving both values.
    pytest.importorskip("torch.distributed")
    env = {
        **{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **faulty("1.01"),
    }
    cmd = [
        str(Path(sys.executable).parent / "torchrun"),
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "hepbench",
        "run",
        "--backend",
        "torch",
        "--strategy",
        "ddp",
        "--data-dir",
        str(built),
        "--config",
        str(tiny_config),
        "-w",
        str(tmp_path),
        "--threads",
        "1",
        "--rank-timeout",
        "300",
    ]
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode != 0 and time.monotonic() - start < 300, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "failed" and rep["numerics"]["status"] == "failed"
    assert [(c["rank"], c["status"], c["windows"]) for c in rep["copies"]] == [(0, "failed", []), (1, "failed", [])]
    assert rep["copies"][0]["log"].startswith("numerics check failed")
    assert rep["copies"][1]["log"].startswith("rank 0's numerics check failed")
    device, host = rep["numerics"]["device"], rep["numerics"]["host"]
    assert device["loss"] / host["loss"] == pytest.approx(1.01, rel=1e-4)
    assert f"loss {device['loss']:.9g}" in rep["log"] and f"loss {host['loss']:.9g}" in rep["log"]
