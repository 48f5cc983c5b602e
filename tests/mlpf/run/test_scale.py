"""`hepbench scale`: its summary, table and plot, its launcher commands and its checks (real 1- and
2-rank scans run in test_horovod.py and test_ddp.py, where they also provide the 2-rank reports
checked there)."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import pytest

from hepbench.cli import main
from hepbench.core.errors import UsageError
from hepbench.core.schema import validate_report
from hepbench.mlpf.report.scaling import table, write_plot
from hepbench.mlpf.run import scale
from hepbench.mlpf.run.scale import (
    ScaleOptions,
    add_efficiency,
    check_run_args,
    launcher_commands,
    parse_hosts,
    parse_ranks,
    place,
    run_scale,
)


def row(n, train=None, status="ok"):
    return {
        "ranks": n,
        "status": status,
        "exit_code": 0 if status == "ok" else 1,
        "summary": f"ranks-{n}/x",
        "train": train,
        "per_rank_mean": None if train is None else train / n,
        "per_rank_min": None,
        "per_rank_max": None,
        "efficiency": None,
        "log": "ok" if status == "ok" else "boom",
        "wall_seconds": 1.0,
    }


def test_efficiency_is_relative_to_the_smallest_size_that_succeeded():
    rows = [row(1, status="failed"), row(2, 10.0), row(4, 15.0), row(8, 40.0)]
    add_efficiency(rows)
    assert [r["efficiency"] for r in rows] == [None, 1.0, 0.75, 1.0]
    rows = [row(1, 4.0), row(2, 6.0)]
    add_efficiency(rows)
    assert rows[1]["efficiency"] == pytest.approx(6.0 / (2 * 4.0))


def test_table_and_plot_show_failed_sizes(tmp_path):
    rows = [row(1, 4.0), row(2, 6.0), row(4, status="failed")]
    add_efficiency(rows)
    summary = {
        "launcher": "gloo",
        "hosts": None,
        "run_options": [],
        "baseline_ranks": 1,
        "start": "s",
        "end": "e",
        "sizes": rows,
    }
    validate_report(summary, scale.SCHEMA)
    text = table(summary).splitlines()
    assert text[2].split()[:2] == ["2", "6"] and "75.0%" in text[2]
    assert "FAILED: boom" in text[3] and "train(N) / (N/1 x train(1))" in text[4]
    png = write_plot(summary, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("text", ["", "0,1", "2,1", "1,1", "one", "1,,2"])
def test_bad_rank_lists_are_refused(text):
    with pytest.raises(UsageError, match="--ranks"):
        parse_ranks(text)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--copies", "2"], "sets --copies itself"),
        (["-w", "x"], "sets -w itself"),
        (["--strategy=single"], "sets --strategy itself"),
        (["--frobnicate"], "unknown option(s) --frobnicate"),
        (["--threads", "zero"], "not valid for hepbench run"),
        (["--backend", "jax"], "sets --backend itself"),
    ],
)
def test_run_options_are_checked_before_anything_starts(args, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_run_args(tuple(args))


def test_a_size_whose_launcher_fails_is_reported_and_fails_the_scan(tmp_path, monkeypatch):
    fake = tmp_path / "horovodrun"
    fake.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(scale, "_horovodrun", lambda: str(fake))
    summary, code = run_scale(ScaleOptions(ranks=(1, 2), results_dir=tmp_path / "r", quiet=True))
    assert code == 1 and [r["exit_code"] for r in summary["sizes"]] == [3, 3]
    assert summary["baseline_ranks"] is None and "no report (launcher exit code 3)" in summary["sizes"][0]["log"]
    assert "cannot start" in (tmp_path / "r" / "ranks-1" / "launcher.log").read_text()
    assert json.loads((tmp_path / "r" / "scaling.json").read_text()) == summary


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--timeout", "-5"], ["--launcher", "ssh"]])
def test_bad_option_values_are_usage_errors(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as e:
        main(["scale", "-w", str(tmp_path / "r"), *args])
    assert e.value.code == 2 and "usage:" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_the_cli_refuses_bad_ranks_before_writing(tmp_path, capsys):
    assert main(["scale", "--ranks", "2,1", "-w", str(tmp_path / "r")]) == 2
    assert "--ranks must be increasing" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_horovodrun_runs_tensorflow_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "_horovodrun", lambda: "/x/horovodrun")
    (cmd,) = launcher_commands(ScaleOptions(ranks=(2,), results_dir=tmp_path, run_args=("--threads", "1")), 2, tmp_path)
    assert cmd[:6] == ["/x/horovodrun", "-np", "2", "--gloo", "-H", "localhost:2"]
    assert cmd[7:] == [
        "run",
        "--backend",
        "tensorflow",
        "--strategy",
        "horovod",
        "-w",
        str(tmp_path),
        "--quiet",
        "--threads",
        "1",
    ]


def test_torchrun_on_this_host_is_standalone(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "_torchrun", lambda: "/x/torchrun")
    (cmd,) = launcher_commands(ScaleOptions(ranks=(4,), results_dir=tmp_path, launcher="torchrun"), 4, tmp_path)
    assert cmd[:7] == ["/x/torchrun", "--standalone", "--nnodes", "1", "--nproc-per-node", "4", "--no-python"]
    assert cmd[8:14] == ["run", "--backend", "torch", "--strategy", "ddp", "-w"]


def test_torchrun_on_several_hosts_meets_at_the_first_and_reaches_the_others_by_ssh(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "_torchrun", lambda: "/x/torchrun")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "ib0")
    local = socket.gethostname()
    options = ScaleOptions(
        ranks=(3,),
        results_dir=tmp_path,
        launcher="torchrun",
        hosts=f"{local}:2,node-b:2,node-c:2",
        env={"HEPBENCH_X": "1"},
    )
    here, there = launcher_commands(options, 3, tmp_path)  # 3 ranks: two here, one on node-b, none on node-c
    assert here[:10] == [
        "/x/torchrun",
        "--nnodes",
        "2",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"{local}:{scale.RDZV_PORT}",
        "--rdzv-id",
        here[8],
        "--nproc-per-node",
    ]
    assert here[10] == "2" and there[:4] == ["ssh", "-o", "BatchMode=yes", "node-b"]
    remote = shlex.split(there[4])
    assert remote[:4] == ["cd", str(Path.cwd()), "&&", "exec"] and remote[4] == "env"
    assert {"GLOO_SOCKET_IFNAME=ib0", "HEPBENCH_X=1"} <= set(remote)
    assert remote[remote.index("/x/torchrun") :][:11] == here[:10] + ["1"]  # the same rendezvous, one rank


def test_hosts_must_have_the_slots_for_the_largest_size(tmp_path):
    assert parse_hosts("a:2,b:1") == [("a", 2), ("b", 1)] and place([("a", 2), ("b", 1)], 2) == [("a", 2)]
    for text in ("a", "a:0", ":2", "a:2,b"):
        with pytest.raises(UsageError, match="-H/--hosts"):
            parse_hosts(text)
    with pytest.raises(UsageError, match="--ranks 4: the hosts have 3 slots"):
        run_scale(ScaleOptions(ranks=(1, 4), results_dir=tmp_path / "r", launcher="torchrun", hosts="a:2,b:1"))
    assert not (tmp_path / "r").exists()


def test_a_size_whose_torchrun_fails_is_reported(tmp_path, monkeypatch):
    fake = tmp_path / "torchrun"
    fake.write_text("#!/bin/sh\necho 'rendezvous failed' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(scale, "_torchrun", lambda: str(fake))
    summary, code = run_scale(ScaleOptions(ranks=(2,), results_dir=tmp_path / "r", launcher="torchrun", quiet=True))
    assert code == 1 and summary["launcher"] == "torchrun" and summary["sizes"][0]["exit_code"] == 1
    assert "rendezvous failed" in (tmp_path / "r" / "ranks-2" / "launcher.log").read_text()
