"""The Dockerfile's image under podman (slow: part of CI; the image is built once, conftest.py).

What only a container can show: the default run the image starts with no arguments and its
SIGTERM report, a read-only image as an unprivileged user, mpirun between Horovod ranks, the qsvr
workload, and the driver's refusals. Runs that check container mechanics, not the model, use a
tiny one (the `tiny` fixture). HEPscore's docker-mode run (test_hepscore_client.py) is the complete
default-model run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading

import pytest

from hepbench.core.hostinfo import bmk_checksum
from hepbench.core.schema import load_report, validate_report

pytestmark = pytest.mark.slow


def test_no_arguments_start_the_default_run_which_sigterm_stops_with_a_report(image, results_dir, sh, dev_sh):
    # The image's configuration adds nothing to the arguments (no CMD), so no arguments mean the
    # driver's defaults (entrypoint tests: `hepbench run --resultsdir /results --device auto`).
    config = json.loads(sh("podman", "image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["Entrypoint"] == ["/entrypoint.sh"] and not config.get("Cmd") and config["User"] == "1000:1000"
    # The default run, stopped by the runtime's SIGTERM once training has started: the driver
    # exec'd hepbench, so the signal reaches it and it writes a failure report.
    res = results_dir("a")
    name = f"hepbench-test-sigterm-{os.getpid()}"
    p = subprocess.Popen(
        [dev_sh, "run", image, "--name", name, "-v", f"{res}:/results", "--"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(600, lambda: sh("podman", "kill", name, check=False))
    watchdog.start()
    lines = []
    try:
        for line in p.stderr:
            lines.append(line)
            if "tracing the training step" in line:
                sh("podman", "kill", "--signal", "TERM", name)
                break
        out, err = p.communicate(timeout=300)
    finally:
        watchdog.cancel()
    err = "".join(lines) + err
    assert p.returncode == 143, err[-3000:]
    assert re.search(
        r"mlpf-bmk: 1 copy on cpu \(tensorflow\), \d+ thread\(s\) each; "
        r"6 windows of 12 events after 2 warm-up",
        err,
    )
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["run_info"]["copies"] == 1 and report["run_info"]["events_per_thread"] == 12
    assert report["report"]["status"] != "ok" and "interrupted by SIGTERM" in report["report"]["log"]
    assert not report["report"]["wl-scores"]
    # podman marks its containers with /run/.containerenv (not under --read-only, hence checked here).
    assert report["app"]["containment"] in ("docker", "podman")


def test_unprivileged_read_only_two_copies_give_a_valid_report(image, image_facts, podman, results_dir, tiny):
    # As Apptainer runs an image: uid 1000, read-only image, only /results and /tmp writable.
    res = results_dir("b")
    r = podman(
        image,
        "--user",
        "1000:1000",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-v",
        f"{res}:/results",
        "--",
        "-W",
        "-c",
        "2",
        "-t",
        "1",
        "-e",
        "2",
        "-x",
        *tiny,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["run_info"]["copies"] == 2 and report["run_info"]["threads_per_copy"] == 1
    assert report["run_info"]["extra_arguments"] == " ".join(tiny)
    assert report["report"]["wl-scores"]["train"] > 0 and report["report"]["log"] == "ok"
    assert [[w["events"] for w in c["windows"]] for c in report["report"]["copies"]] == [[2], [2]]
    # Real checksums: the installed code is this tree's code; the data is what the image baked.
    assert report["app"]["bmk_checksum"] == bmk_checksum()
    assert report["app"]["bmkdata_checksum"] == image_facts["checksum"] and len(image_facts["checksum"]) == 64
    assert {"inputs.log", "version.json"} <= {p.name for p in res.iterdir()}
    assert {p.stat().st_uid for p in res.iterdir()} == {1000}


def test_mpirun_starts_two_horovod_ranks_that_talk_over_mpi(image, podman, results_dir, tiny):
    # The image's OpenMPI and its MPI-built Horovod, started the way a site's mpirun/srun would:
    # no driver, no --strategy (detected from mpirun's environment), hepbench from the image's PATH.
    res = results_dir("mpi")
    r = podman(
        image,
        "-v",
        f"{res}:/results",
        "--entrypoint",
        "mpirun",
        "--",
        "-np",
        "2",
        "--bind-to",
        "none",
        "--mca",
        "btl_vader_single_copy_mechanism",
        "none",  # no CMA in containers
        "hepbench",
        "run",
        "-w",
        "/results",
        "--threads",
        "1",
        "--events",
        "2",
        *tiny,
        "--rank-timeout",
        "600",
    )  # the default 120 s failed a run on a machine busy with other jobs
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["benchmark"]["strategy"] == "horovod" and rep["benchmark"]["controller"] == "mpi"
    assert [c["rank"] for c in rep["copies"]] == [0, 1]
    assert rep["wl-scores"]["train"] == pytest.approx(sum(c["train"]["events_per_second"] for c in rep["copies"]))


def test_the_qsvr_workload_runs_in_the_image(image, podman, results_dir):
    res = results_dir("qsvr")
    r = podman(
        image,
        "--user",
        "1000:1000",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-v",
        f"{res}:/results",
        "--",
        "--workload",
        "qsvr",
        "-e",
        "3",
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(res / "qsvr_summary.json")
    validate_report(report, "qsvr_summary.schema.json")
    assert report["app"]["name"] == "qsvr-bmk" and report["report"]["wl-scores"]["fits_per_second"] > 0


def test_unknown_option_prints_usage_and_writes_nothing(image, podman, results_dir):
    res = results_dir("c")
    r = podman(image, "-v", f"{res}:/results", "--", "-W", "--frobnicate")
    assert r.returncode != 0 and "Usage:" in r.stderr and "unknown option '--frobnicate'" in r.stderr
    assert list(res.iterdir()) == []


def test_unwritable_results_directory_is_a_clear_error(image, podman, results_dir):
    res = results_dir("d", mode=0o555)  # root-owned, not writable for uid 1000
    r = podman(image, "-v", f"{res}:/results", "--", "-W")
    assert r.returncode != 0 and "results directory /results is not writable" in r.stderr
    assert list(res.iterdir()) == []


def test_horovod_comes_from_the_wheel_store_or_is_compiled_with_mpi_and_gloo(build, image_facts):
    logs = build.log("deps")
    compiled = re.findall(r"install\.sh: Horovod compiled: (\S+)", logs)
    stored = re.findall(r"install\.sh: Horovod from the stored wheel (\S+)", logs)
    # The deps stage from the layer cache (unchanged since an earlier build here) ran no phase.
    cached = re.search(r"install\.sh deps horovod\n--> Using cache ", logs)
    assert len(compiled) + len(stored) == (0 if cached else 1), compiled + stored
    if not cached:  # the wheel store is keyed by what the build links against: the image's OpenMPI
        assert "-openmpi" in (compiled + stored)[0], compiled + stored
    version, *built = image_facts["horovod"].split()  # imported in the image: what it was built with
    assert version == "0.28.1" and {"tensorflow", "mpi", "gloo"} <= set(built), image_facts["horovod"]
    assert image_facts["tools"] == ""  # build packages left in the build stage
