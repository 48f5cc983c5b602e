"""entrypoint.sh, the HEP-workloads driver: option mapping, usage errors, the environment it sets.

A stand-in `hepbench` (HEPBENCH_BIN) prints what it was given, so these tests see exactly what
the driver would run; the image tests (tests/container/image/) run the real thing.
"""

from __future__ import annotations

import json
import os

import pytest


def called(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_arguments_give_the_default_run(driver, tmp_path):
    out = called(driver())
    assert out["argv"] == ["run", "--resultsdir", "/results", "--device", "auto"]
    assert out["env"]["HOME"].startswith(str(tmp_path)) and out["env"]["MPLCONFIGDIR"].startswith(str(tmp_path))
    assert out["env"]["PATH"].startswith(str(tmp_path / "opt" / "venv" / "bin"))


def test_hepscore_options_are_mapped(driver):
    out = called(driver("-W", "-w", "/res", "-c", "2", "-t", "1", "-e", "4", "-n", "2", "-M", "cpu", "-m", "none"))
    assert out["argv"] == [
        "run",
        "--resultsdir",
        "/res",
        "--device",
        "cpu",
        "--copies",
        "2",
        "--threads",
        "1",
        "--events",
        "4",
        "--ncores",
        "2",
        "--keep-work",
    ]
    out = called(driver("--resultsdir", "/r", "--copies", "3", "--threads", "2", "--events", "8", "--debug"))
    assert out["argv"][:8] == ["run", "--resultsdir", "/r", "--device", "auto", "--copies", "3", "--threads"]
    assert out["env"]["TF_CPP_MIN_LOG_LEVEL"] == "0"


@pytest.mark.parametrize(
    "args",
    [
        ["-x", "--windows 5 --precision bf16"],  # one word
        ["--extra-args", "--windows", "5", "--precision", "bf16"],  # split over several words
        ["-x", "--windows", "-x", "5 --precision", "-x", "bf16"],  # repeated
    ],
)
def test_extra_arguments_arrive_as_one_or_several_words(driver, args):
    out = called(driver(*args, "-c", "1"))
    assert out["argv"][-4:] == ["--windows", "5", "--precision", "bf16"]
    assert "--copies" in out["argv"]  # the driver option after the extra words is still the driver's
    assert out["env"]["HEPBENCH_EXTRA_ARGUMENTS"] == "--windows 5 --precision bf16"


@pytest.mark.parametrize("flag", ["-b", "--backend"])
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_backend_option_becomes_hepbench_runs_backend(driver, flag, backend):
    out = called(driver("-W", flag, backend, "-M", "gpu", "-x", "--precision bf16"))
    assert out["argv"] == [
        "run",
        "--resultsdir",
        "/results",
        "--device",
        "gpu",
        "--backend",
        backend,
        "--precision",
        "bf16",
    ]
    # Without the option the driver passes none: hepbench's own default (tensorflow, or $KERAS_BACKEND).
    assert "--backend" not in called(driver("-M", "gpu"))["argv"]


def test_extra_arguments_end_at_the_backend_option(driver):
    out = called(driver("-x", "--windows", "5", "-b", "torch"))
    assert out["argv"][-4:] == ["--backend", "torch", "--windows", "5"]
    assert out["env"]["HEPBENCH_EXTRA_ARGUMENTS"] == "--windows 5"


def test_the_baked_data_set_is_used_when_present(driver, tmp_path):
    (tmp_path / "opt" / "data" / "tfds").mkdir(parents=True)
    assert called(driver())["env"]["HEPBENCH_DATA_DIR"] == str(tmp_path / "opt" / "data" / "tfds")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["-c", "0"], "-c must be a positive integer, not '0'"),
        (["--threads", "two"], "--threads must be a positive integer, not 'two'"),
        (["-M", "tpu"], "-M must be cpu, gpu or auto"),
        (["-m", "some"], "must be all, custom or none"),
        (["-w"], "option -w needs a value"),
        (["--workload", "nope"], "--workload must be mlpf, qsvr or hpo"),
        (["--workload", "qsvr", "-c", "2"], "--workload qsvr runs one copy; -c must be 1"),
        (["-t", "4", "--workload", "qsvr"], "--workload qsvr runs on one thread; -t must be 1"),
        (["--workload", "qsvr", "-M", "gpu"], "-M must be cpu or auto"),
        (["--workload", "hpo", "-c", "2"], "--workload hpo runs one search; -c must be 1"),
        (["-t", "2", "--workload", "hpo"], "--workload hpo runs one-CPU trials; -t must be 1, not '2'"),
        (["--workload", "hpo", "-M", "gpu"], "--workload hpo runs on the CPU; -M must be cpu or auto"),
        (["--workload", "hpo", "-e", "0"], "-e must be a positive integer, not '0'"),
        (["-b", "mxnet"], "-b must be tensorflow, jax or torch, not 'mxnet'"),
        (["--backend"], "option --backend needs a value"),
        (["--workload", "qsvr", "-b", "torch"], "-b/--backend applies to the mlpf workload, not 'qsvr'"),
        (["--backend", "jax", "--workload", "hpo"], "-b/--backend applies to the mlpf workload, not 'hpo'"),
    ],
)
def test_bad_options_print_usage_and_start_nothing(driver, args, message):
    r = driver(*args)
    assert r.returncode == 2 and message in r.stderr and "Usage:" in r.stderr
    assert r.stdout == ""  # the stand-in hepbench never ran


def test_help(driver):
    r = driver("-h")
    assert r.returncode == 0 and "--copies" in r.stdout and r.stdout.startswith("Usage:")
    assert "[-b BACKEND]" in r.stdout and "-b, --backend NAME    the engine of the mlpf workload" in r.stdout


def test_qsvr_workload_runs_hepbench_qsvr_run(driver):
    out = called(driver("--workload", "qsvr", "-W", "-w", "/res"))
    assert out["argv"] == ["qsvr", "bench", "--resultsdir", "/res"]
    out = called(
        driver(
            "-c",
            "1",
            "-t",
            "1",
            "-n",
            "4",
            "-M",
            "cpu",
            "-e",
            "5",
            "--workload",
            "qsvr",
            "-x",
            "--seed 3",
            "-m",
            "none",
        )
    )
    assert out["argv"] == ["qsvr", "bench", "--resultsdir", "/results", "--fits", "5", "--seed", "3"]
    assert out["env"]["HEPBENCH_EXTRA_ARGUMENTS"] == "--seed 3"
    assert out["env"]["MPLCONFIGDIR"]  # the same environment as the mlpf workload


def test_hpo_workload_runs_hepbench_hpo_bench(driver):
    out = called(driver("--workload", "hpo", "-W", "-w", "/res"))
    assert out["argv"] == ["hpo", "bench", "--resultsdir", "/res"]
    # -e: the number of trials; -n: the CPUs of the search (HEPscore's --ncores).
    out = called(
        driver(
            "-c", "1", "-t", "1", "-n", "4", "-M", "cpu", "-e", "6", "--workload", "hpo", "-x", "--seed 3", "-m", "none"
        )
    )
    assert out["argv"] == [
        "hpo",
        "bench",
        "--resultsdir",
        "/results",
        "--trials",
        "6",
        "--num-cpus",
        "4",
        "--seed",
        "3",
    ]
    assert out["env"]["HEPBENCH_EXTRA_ARGUMENTS"] == "--seed 3"
    assert out["env"]["MPLCONFIGDIR"]  # the same environment as the mlpf workload


def test_help_names_the_qsvr_and_hpo_workloads(driver):
    r = driver("--help")
    assert "--workload NAME   mlpf (default), qsvr or hpo" in r.stdout and "[--workload mlpf|qsvr|hpo]" in r.stdout
    assert (
        "qsvr_summary.json" in r.stdout
        and "hpo_summary.json" in r.stdout
        and "not part of this version" not in r.stdout
    )


def test_the_home_folder_is_the_callers_own_per_uid(driver, tmp_path):
    # HEPscore's `-B /tmp` makes /tmp the host's, shared by users: one folder per uid, private.
    home = tmp_path / f"mlpf-bmk-home-{os.getuid()}"
    out = called(driver())
    assert out["env"]["HOME"] == str(home)
    assert out["env"]["MPLCONFIGDIR"] == str(home / ".matplotlib")
    assert home.is_dir() and (home.stat().st_mode & 0o777) == 0o700


def test_a_home_path_that_is_not_our_own_folder_gives_a_fresh_private_one(driver, tmp_path):
    # A symlink planted at the per-uid name (shared /tmp) must not be followed.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"mlpf-bmk-home-{os.getuid()}").symlink_to(elsewhere)
    home = called(driver())["env"]["HOME"]
    assert home.startswith(str(tmp_path / f"mlpf-bmk-home-{os.getuid()}."))
    assert os.path.isdir(home) and not os.path.islink(home) and not any(elsewhere.iterdir())
