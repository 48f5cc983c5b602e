"""`hepbench run --strategy mirrored`: one process, MirroredStrategy over two logical CPU devices."""

from __future__ import annotations

import pytest

from hepbench.core.schema import load_report, validate_report


def test_two_logical_cpu_devices_train_as_one_copy_and_report_two_devices(hepbench_run, built, tiny_config, tmp_path):
    r = hepbench_run(
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--device",
        "cpu",
        "--strategy",
        "mirrored",
        "--replicas",
        "2",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 mirrored replicas" in r.stdout and "2 x " in r.stderr
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["benchmark"]["strategy"] == "mirrored" and report["run_info"]["copies"] == 1
    (copy,) = rep["copies"]
    assert copy["replicas"] == 2 and [d["type"] for d in copy["replica_devices"]] == ["cpu", "cpu"]
    assert [(d["copy"], d["replica"]) for d in report["app"]["devices"]] == [(0, 0), (0, 1)]
    # batch_size events per replica and step: a window of 4 events per device is 2 steps of 2 x 2.
    assert rep["benchmark"]["events_per_window"] == 8
    assert [(w["steps"], w["events"]) for w in copy["windows"]] == [(2, 8), (2, 8)]
    assert copy["warmup"]["events"] == 4
    # The numerics check on replica 0's share of the first batch (2 of its 4 events), outside the strategy.
    assert (rep["numerics"]["status"], rep["numerics"]["events"]) == ("passed", 2)
    assert rep["wl-scores"]["train"] == pytest.approx(copy["train"]["events_per_second"])
