"""`hepbench run --backend torch --strategy ddp` under torchrun (Gloo, this host): one report for all
ranks (also with --strategy auto, and as the 1- and 2-rank jobs of `hepbench scale --launcher
torchrun`), a job that ends, with a failure report, when one rank is killed; and how a rank finds
its place in the job from torchrun's or srun's variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hepbench.core.errors import UsageError
from hepbench.core.schema import load_report, validate_report
from hepbench.mlpf.run.ddp import rank_environment
from hepbench.mlpf.run.scale import SCHEMA as SCALING_SCHEMA
from tests.mlpf.run.killed_rank import check_killed_rank_report

BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
ENV.pop("KERAS_BACKEND", None)  # --backend (or its absence) decides, as for a user without it


@pytest.mark.parametrize(
    "env, expected",
    [
        (
            {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "29500"},
            {"rank": 1, "size": 4, "local_rank": 1, "master_addr": "n1", "master_port": "29500"},
        ),
        # srun: the step's task count, not the job's (SLURM_NTASKS); torchrun's variables win over srun's
        (
            {
                "SLURM_PROCID": "3",
                "SLURM_LOCALID": "1",
                "SLURM_STEP_NUM_TASKS": "4",
                "SLURM_NTASKS": "8",
                "MASTER_ADDR": "n1",
                "MASTER_PORT": "29500",
            },
            {"rank": 3, "size": 4, "local_rank": 1, "master_addr": "n1", "master_port": "29500"},
        ),
        (
            {
                "RANK": "0",
                "WORLD_SIZE": "2",
                "LOCAL_RANK": "0",
                "MASTER_ADDR": "a",
                "MASTER_PORT": "1",
                "SLURM_PROCID": "5",
                "SLURM_LOCALID": "0",
                "SLURM_NTASKS": "8",
            },
            {"rank": 0, "size": 2, "local_rank": 0, "master_addr": "a", "master_port": "1"},
        ),
    ],
)
def test_a_rank_takes_its_place_from_the_launcher(env, expected):
    assert rank_environment(env) == expected


def test_a_process_no_launcher_started_is_a_one_rank_job_on_a_free_port():
    found = rank_environment({})
    assert (found["rank"], found["size"], found["master_addr"]) == (0, 1, "127.0.0.1")
    assert found["master_port"].isdigit()


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_STEP_NUM_TASKS": "2"},
            r"under srun: \$MASTER_ADDR and \$MASTER_PORT not set",
        ),
        (
            {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_STEP_NUM_TASKS": "2", "MASTER_ADDR": "n1"},
            r"\$MASTER_PORT not set",
        ),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "rank 2 is not below the world size 2"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, r"\$RANK must be a non-negative integer"),
        ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "http"}, "must be a port number"),
    ],
)
def test_a_job_the_rank_cannot_join_is_a_usage_error(env, message):
    with pytest.raises(UsageError, match=message):
        rank_environment(env)


# Below: real DDP jobs (torchrun, the torch backend, Gloo on this host's CPUs).


def torchrun(*args, nproc: int = 2) -> list[str]:
    return [
        str(BIN / "torchrun"),
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "hepbench",
        "run",
        "--backend",
        "torch",
        *map(str, args),
    ]


def check_two_rank_report(results: Path) -> dict:
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    ranks = rep["copies"]
    assert rep["status"] == "ok" and report["run_info"]["copies"] == 2
    assert [c["rank"] for c in ranks] == [0, 1] and {c["local_rank"] for c in ranks} == {0, 1}
    assert all(c["host"] and c["device"]["type"] == "cpu" for c in ranks)
    assert rep["benchmark"]["strategy"] == "ddp" and rep["benchmark"]["process_group"] == "gloo"
    assert rep["backend"]["name"] == "torch" and report["run_info"]["backend"] == "torch"
    assert rep["wl-scores"]["train"] == pytest.approx(sum(c["train"]["events_per_second"] for c in ranks))
    assert rep["wl-stats"]["count"] == 2
    # DDP averages the gradients: every rank trains the same model, and the loss is the combined batch's.
    assert ranks[0]["train"]["final_loss"] == pytest.approx(ranks[1]["train"]["final_loss"], rel=1e-6)
    return report


@pytest.mark.slow
def test_two_ranks_with_strategy_auto_are_a_ddp_job_with_one_report(built, tiny_config, tmp_path):
    pytest.importorskip("torch.distributed")
    r = subprocess.run(
        torchrun("--data-dir", built, "--config", tiny_config, "-w", tmp_path, "--threads", "1"),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("train score") == 1 and "2 DDP ranks" in r.stdout  # rank 0 alone reports
    check_two_rank_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs.log", "mlpf_summary.json", "version.json"]


@pytest.fixture(scope="module")
def scaled(built, tiny_config, tmp_path_factory):
    """`hepbench scale --launcher torchrun --ranks 1,2`: a 1-rank and a 2-rank DDP job."""
    pytest.importorskip("torch.distributed")
    out = tmp_path_factory.mktemp("ddp-scaling")
    r = subprocess.run(
        [
            str(BIN / "hepbench"),
            "scale",
            "--launcher",
            "torchrun",
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


@pytest.mark.slow
def test_scale_with_torchrun_gives_both_reports_and_the_table(scaled):
    out, stdout = scaled
    summary = json.loads((out / "scaling.json").read_text())
    validate_report(summary, SCALING_SCHEMA)
    assert summary["launcher"] == "torchrun" and summary["hosts"] is None
    one, two = summary["sizes"]
    reports = [load_report(out / s["summary"]) for s in (one, two)]
    check_two_rank_report(out / "ranks-2")
    assert [len(rep["report"]["copies"]) for rep in reports] == [1, 2]
    assert two["train"] == pytest.approx(reports[1]["report"]["wl-scores"]["train"])
    assert two["efficiency"] == pytest.approx(two["train"] / (2 * one["train"]))
    # Weak scaling: every rank did the same work at both sizes.
    assert {c["train"]["events"] for rep in reports for c in rep["report"]["copies"]} == {8}
    assert stdout.splitlines()[0].startswith("ranks") and "launcher: torchrun" in stdout
    assert (out / "ranks-2" / "launcher.log").read_text().count("train score") == 1  # rank 0 alone reports


def rank_pid(results: Path, rank: int) -> int | None:
    """The process of `rank` of the job writing to `results` (torchrun gives each rank RANK=...)."""
    for entry in Path("/proc").iterdir():
        try:
            if str(results) not in (entry / "cmdline").read_text():
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"RANK={rank}".encode() in environ and b"TORCHELASTIC_RUN_ID" in b"\0".join(environ):
                return int(entry.name)
        except (OSError, ValueError):
            continue
    return None


@pytest.mark.slow
def test_killing_one_rank_ends_the_job_with_a_failure_report(built, tiny_config, tmp_path):
    pytest.importorskip("torch.distributed")
    cmd = torchrun(
        "--strategy",
        "ddp",
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
    pid = rank_pid(tmp_path, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and time.monotonic() - killed < 60
    # Rank 0 handled the loss and replaced its placeholder report (tests/mlpf/run/killed_rank.py).
    check_killed_rank_report(tmp_path, "ddp", out)
