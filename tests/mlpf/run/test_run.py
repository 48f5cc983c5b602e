"""`hepbench run` end to end on a tiny model: the report, copies, failures, signals, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from hepbench.cli import main
from hepbench.core.schema import load_report, validate_report

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


def test_a_short_cpu_run_writes_a_valid_report_mllog_and_companions(hepbench_run, built, tiny_config, tmp_path):
    results, mllog = tmp_path / "results", tmp_path / "mllog.txt"
    r = hepbench_run("--data-dir", built, "--config", tiny_config, "-w", results, "--mllog", mllog, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    train = rep["wl-scores"]["train"]
    assert isinstance(train, float) and train > 0 and rep["log"] == "ok"
    assert f"{train:.4g} events/s" in r.stdout

    (copy,) = rep["copies"]
    assert [w["events"] for w in copy["windows"]] == [4, 4]  # 2 windows x 2 steps x batch 2
    warmup = copy["warmup"]
    assert sorted(warmup) == ["events", "seconds", "shapes", "steps"] and (warmup["steps"], warmup["events"]) == (1, 2)
    assert warmup["shapes"] and all(events == 2 and length % 16 == 0 for events, length in warmup["shapes"])
    assert 0 < warmup["seconds"] and warmup["seconds"] + copy["train"]["seconds"] < copy["wall_seconds"]
    assert copy["train"]["events"] == 8 and copy["train"]["events_per_second"] == pytest.approx(train)
    assert copy["train"]["seconds"] == pytest.approx(sum(w["seconds"] for w in copy["windows"]))
    # Padding is work the model did, not work that was asked for: padded >= real, both reported.
    assert 0 < copy["train"]["real_elements"] <= copy["train"]["padded_elements"]
    assert copy["validation"]["events"] == 2 and copy["validation"]["events_per_second"] > 0
    assert copy["device"]["type"] == "cpu" and copy["peak_host_memory_bytes"] > 0
    assert rep["dataset"]["train_events"] == 12 and rep["dataset"]["test_events"] == 4
    # The data set's checksum is the digest verified before timing, the one its build recorded.
    manifest = json.loads((built / "delphes_pf/1.1.0/checksums.json").read_text())
    assert report["app"]["bmkdata_checksum"] == rep["dataset"]["checksum"] == manifest["combined"]
    assert "data set verified:" in r.stderr
    assert rep["config"]["model"]["bin_size"] == 16 and rep["software"]["tensorflow"]
    # The arithmetic checked before the clock: the first batch's loss and gradient norm, device and host.
    numerics = rep["numerics"]
    assert (numerics["status"], numerics["arithmetic"], numerics["events"]) == ("passed", "fp32", 2)
    assert numerics["relative_difference"]["loss"] <= numerics["tolerance"]["loss"] and numerics["host"]["loss"] > 0
    assert "numerics check passed" in r.stderr.split("window 1/2")[0].split("traced")[1]
    # The default backend is the reference, and the report says how its step ran.
    assert report["run_info"]["backend"] == "tensorflow" and rep["backend"]["name"] == "tensorflow"
    assert rep["backend"]["compile"] == "tf.function" and rep["backend"]["version"] == rep["software"]["tensorflow"]
    assert rep["precision"] == "fp32" and rep["fp32_matmul"] == "highest"  # the default: IEEE float32 matmuls
    assert r.stdout.strip().endswith("(1 copy, cpu, fp32, tensorflow)")
    assert "window 1/2: 4 events" in r.stderr and "window 2/2" in r.stderr
    # The share of the CPU's peak: the copy's own fp32 matmul ceiling, measured before its clock.
    ceiling, mfu = copy["ceiling"], rep["throughput"]["model_flops_utilisation"]
    assert (ceiling["framework"], ceiling["precision"]) == ("tensorflow", "fp32") and ceiling["flops_per_second"] > 0
    assert (mfu["peak_flops_per_second"], mfu["precision"], mfu["devices"]) == (ceiling["flops_per_second"], "fp32", 1)
    assert mfu["value"] == pytest.approx(rep["throughput"]["flops_per_second"] / ceiling["flops_per_second"])
    assert mfu["source"].startswith("measured: ") and mfu["reason"] is None and mfu["table_entry"] is None
    assert copy["model_flops_utilisation"] == mfu  # one copy: its share is the run's
    assert "matmul ceiling" in r.stderr.split("tracing the training step")[0]

    # Companions, and nothing half-written left behind.
    assert files_in(results) == ["inputs.log", "mlpf_summary.json", "version.json"]
    assert json.loads((results / "version.json").read_text()) == report["app"]
    assert "NCOPIES=1\n" in (results / "inputs.log").read_text()
    events = [json.loads(line.removeprefix(":::MLLOG ")) for line in mllog.read_text().splitlines()]
    keys = [e["key"] for e in events]
    assert keys.count("epoch_start") == keys.count("epoch_stop") == 2
    assert keys[0] == "submission_benchmark" and keys[-1] == "run_stop"
    assert events[-1]["metadata"]["status"] == "success"
    assert next(e["value"] for e in events if e["key"] == "train_samples") == 8


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two copies need two CPUs")
def test_two_copies_run_on_disjoint_cpus_and_their_rates_add_up(hepbench_run, built, tiny_config, tmp_path):
    r = hepbench_run("--data-dir", built, "--config", tiny_config, "-w", tmp_path, "--copies", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1 and "window" not in r.stderr  # --quiet: the score line only
    report = load_report(tmp_path / "mlpf_summary.json")
    rep = report["report"]
    rates = [c["train"]["events_per_second"] for c in rep["copies"]]
    assert rep["wl-scores"]["train"] == pytest.approx(sum(rates))
    assert rep["wl-stats"]["count"] == 2 and rep["wl-stats"]["min"] == min(rates)
    cpus = [set(c["cpus"]) for c in rep["copies"]]
    assert cpus[0] and cpus[1] and not cpus[0] & cpus[1]
    assert [c["threads"] for c in rep["copies"]] == [1, 1]
    # Each copy measured its own CPU's ceiling: the run's peak is their sum.
    mfu = rep["throughput"]["model_flops_utilisation"]
    assert mfu["devices"] == 2 and mfu["value"] > 0
    assert mfu["peak_flops_per_second"] == pytest.approx(sum(c["ceiling"]["flops_per_second"] for c in rep["copies"]))
    assert report["run_info"]["copies"] == 2 and len(report["app"]["devices"]) == 2
    assert rep["numerics"]["status"] == "passed"  # copy 0's check


def test_an_xla_run_compiles_every_padded_length_before_the_clock(hepbench_run, built, tiny_config, tmp_path):
    # XLA compiles each new shape on its first execution: the loop's warming runs every shape of the
    # run untimed, so variable lengths need no data.pad_to_max any more.
    r = hepbench_run(
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--device",
        "cpu",
        "--set",
        "train.jit_compile=true",
    )
    assert r.returncode == 0, r.stderr
    rep = load_report(tmp_path / "mlpf_summary.json")["report"]
    assert rep["status"] == "ok" and rep["backend"]["compile"] == "tf.function+xla"
    lengths = {length for _, length in rep["copies"][0]["warmup"]["shapes"]}
    assert len(lengths) > 1 and f"warmed {len(lengths)} batch shape(s)" in r.stderr


def test_a_nan_loss_fails_the_run_with_a_failure_report(hepbench_run, built, tiny_config, tmp_path):
    r = hepbench_run("--data-dir", built, "--config", tiny_config, "-w", tmp_path, "--learning-rate", "1e30")
    assert r.returncode == 1
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "failed" and rep["wl-scores"] == {}
    assert "training loss became" in rep["log"] and "invalid" in rep["log"]
    assert rep["numerics"]["status"] == "passed"  # the initial weights' arithmetic was right; the rate was not
    mfu = rep["throughput"]["model_flops_utilisation"]  # the peak was measured; no FLOP/s to share
    assert mfu["value"] is None and mfu["reason"] == "no FLOP/s achieved (the run failed)"
    assert mfu["peak_flops_per_second"] == rep["copies"][0]["ceiling"]["flops_per_second"]
    assert "FAILED" in r.stdout
    assert files_in(tmp_path) == ["inputs.log", "mlpf_summary.json", "version.json"]


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])  # the handling is the backend-neutral copy's
def test_sigterm_stops_the_run_cleanly_with_a_failure_report(built, tiny_config, tmp_path, backend):
    # Long enough to be interrupted in the middle: 50 windows of 100 steps.
    args = [
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
        "--windows",
        "50",
        "--events",
        "200",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hepbench", "run", *map(str, args)],
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for line in proc.stderr:
        if line.startswith("window 1/50"):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    report = load_report(tmp_path / "mlpf_summary.json")
    rep = report["report"]
    assert rep["status"] == "failed" and "SIGTERM" in rep["log"] and rep["wl-scores"] == {}
    assert rep["backend"]["name"] == backend
    assert 1 <= len(rep["copies"][0]["windows"]) < 50  # what was measured before the signal is kept


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--copies", "999"], 2, "--copies 999 needs at least 999 CPUs"),
        (["--set", "bench.windows=0"], 2, "bench.windows must be positive"),
        (["--set", "train.compile_backend=aot_eager"], 2, "train.compile_backend=aot_eager needs train.compile=true"),
        (["--set", "bench.colour=blue"], 2, "unknown key(s) ['colour']"),
        (["--ncores", "999"], 2, "--ncores 999: this process may use"),
        (["--replicas", "2"], 2, "--replicas belongs to --strategy mirrored"),
        (["--strategy", "mirrored", "--copies", "2"], 2, "use --replicas, not --copies"),
        (
            ["--strategy", "mirrored", "--replicas", "999", "--device", "cpu"],
            2,
            "--replicas 999 needs at least 999 CPUs",
        ),
    ],
)
def test_bad_values_fail_before_anything_is_written(built, tmp_path, capsys, args, code, message):
    results = tmp_path / "results"
    assert main(["run", "--data-dir", str(built), "-w", str(results), *args]) == code
    assert message in capsys.readouterr().err
    assert not results.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--copies", "0"],
        ["--device", "tpu"],
        ["--events", "many"],
        ["--threads", "-1"],
        ["--ncores", "0"],
        ["--strategy", "ring"],
        ["--rank-timeout", "0"],
        ["--replicas", "0"],
        ["--rank-timeout", "nan"],
    ],
)
def test_bad_option_syntax_is_a_usage_error(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as e:
        main(["run", "-w", str(tmp_path / "r"), *args])
    assert e.value.code == 2 and "usage:" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_missing_data_set_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--data-dir", str(tmp_path / "nothing"), "-w", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "no delphes_pf 1.1.0 data set built there" in err and "hepbench data build" in err
    assert not (tmp_path / "r").exists()


def test_an_unwritable_results_directory_is_a_clear_error(built, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "--data-dir", str(built), "-w", str(blocker / "results")]) == 2
    assert f"results directory {blocker / 'results'} is not writable" in capsys.readouterr().err


def test_the_data_dir_defaults_to_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HEPBENCH_DATA_DIR", str(tmp_path / "from-env"))
    assert main(["run", "-w", str(tmp_path / "r")]) == 1
    assert str(tmp_path / "from-env") in capsys.readouterr().err
