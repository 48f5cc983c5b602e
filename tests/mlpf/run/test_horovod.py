"""`hepbench run --strategy horovod` under horovodrun (Gloo, localhost): one report for all ranks
(the 1- and 2-rank jobs of `hepbench scale`), a job that ends, with a failure report, when one
rank is killed, and lone ranks refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hepbench.core.schema import load_report, validate_report
from hepbench.mlpf.run.scale import SCHEMA as SCALING_SCHEMA
from tests.mlpf.run.killed_rank import check_killed_rank_report

pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make setup` (second step)")
pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def horovodrun(*args) -> list[str]:
    return [
        str(BIN / "horovodrun"),
        "-np",
        "2",
        "--gloo",
        "-H",
        "localhost:2",
        str(BIN / "hepbench"),
        "run",
        *map(str, args),
    ]


@pytest.fixture(scope="module")
def scaled(built, tiny_config, tmp_path_factory):
    """`hepbench scale --ranks 1,2`: a 1-rank and a 2-rank horovodrun job (their reports and the scaling files)."""
    out = tmp_path_factory.mktemp("scaling")
    r = subprocess.run(
        [
            str(BIN / "hepbench"),
            "scale",
            "--ranks",
            "1,2",
            "-w",
            str(out),
            "--",
            "--data-dir",
            str(built),
            "--config",
            str(tiny_config),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r.stdout


def test_two_ranks_write_one_report_whose_score_is_the_sum(scaled):
    out, _ = scaled
    results = out / "ranks-2"
    assert (results / "launcher.log").read_text().count("train score") == 1  # rank 0 alone reports
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    ranks = rep["copies"]
    assert [c["rank"] for c in ranks] == [0, 1] and {c["local_rank"] for c in ranks} == {0, 1}
    assert all(c["host"] for c in ranks) and rep["benchmark"]["strategy"] == "horovod"
    assert rep["benchmark"]["controller"] == "gloo"
    assert rep["wl-scores"]["train"] == pytest.approx(sum(c["train"]["events_per_second"] for c in ranks))
    assert rep["wl-stats"]["count"] == 2
    # Gradients are averaged: every rank trains the same model, so the losses agree.
    assert ranks[0]["train"]["final_loss"] == pytest.approx(ranks[1]["train"]["final_loss"], rel=1e-6)
    assert sorted(p.name for p in results.iterdir()) == [
        "inputs.log",
        "launcher.log",
        "mlpf_summary.json",
        "version.json",
    ]


def test_scale_gives_a_table_a_plot_and_both_reports(scaled):
    out, stdout = scaled
    summary = json.loads((out / "scaling.json").read_text())
    validate_report(summary, SCALING_SCHEMA)
    one, two = summary["sizes"]
    reports = [load_report(out / s["summary"]) for s in (one, two)]
    assert [len(rep["report"]["copies"]) for rep in reports] == [1, 2]
    assert two["train"] == pytest.approx(reports[1]["report"]["wl-scores"]["train"])
    assert two["efficiency"] == pytest.approx(two["train"] / (2 * one["train"]))
    # Weak scaling: every rank did the same work at both sizes.
    assert {c["train"]["events"] for rep in reports for c in rep["report"]["copies"]} == {8}
    assert (out / "scaling.png").stat().st_size > 0 and stdout.splitlines()[0].startswith("ranks")
    assert sorted(p.name for p in out.iterdir()) == ["ranks-1", "ranks-2", "scaling.json", "scaling.png", "scaling.txt"]


def rank_pid(results: Path, rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        try:
            if str(results) not in (entry / "cmdline").read_text():
                continue
            if f"HOROVOD_RANK={rank}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except (OSError, ValueError):
            continue
    return None


def test_killing_one_rank_ends_the_job_with_a_failure_report(built, tiny_config, tmp_path):
    cmd = horovodrun(
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--threads",
        "1",
        "--windows",
        "200",
        "--events",
        "200",
        "--rank-timeout",
        "60",
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    for line in proc.stdout:
        if "window 1/200" in line:
            break
    os.kill(rank_pid(tmp_path, 1), signal.SIGKILL)
    killed = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and time.monotonic() - killed < 60
    assert "Process 1 exit with status code 137" in out  # horovodrun saw rank 1 die of SIGKILL
    # Rank 0 handled the loss and replaced its placeholder report (tests/mlpf/run/killed_rank.py).
    check_killed_rank_report(tmp_path, "horovod", out)


def test_ranks_that_horovod_cannot_see_are_refused_before_anything_is_written(built, tmp_path):
    # srun -n 2 with a Horovod whose MPI does not understand srun: two lone 1-rank jobs otherwise.
    r = subprocess.run(
        [str(BIN / "hepbench"), "run", "--data-dir", str(built), "-w", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env={**ENV, "SLURM_STEP_NUM_TASKS": "2"},
        timeout=300,
    )
    assert r.returncode == 2, r.stderr[-3000:]
    assert "the launcher started 2 processes, but Horovod sees only this one" in r.stderr
    assert not (tmp_path / "r").exists()
