"""The image, built and run the way sites run it (slow: part of CI, see container/dev.sh).

Built from the Dockerfile on the local Debian base with a smaller generated subset (200 + 20 events
instead of 2,000 + 200) to keep CI short; everything else is the image `docker build .` gives.
Singularity.def is built at the same time (spython + buildah), in the background: both builds spend
most of their time in single-threaded work (apt, pip unpacking, committing layers), so on two cores
they take little longer together than one alone. Both read the host's pip cache and share the
Horovod wheel store (container/dev.sh): Horovod is compiled by one build at most, and by none when
an earlier run left a wheel built for the same TensorFlow, Python and MPI.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hepbench.core.hostinfo import bmk_checksum
from hepbench.core.schema import load_report, validate_report

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEV = str(ROOT / "container" / "dev.sh")
IMAGE = "localhost/mlpf-bmk:test"
DEF_IMAGE = "localhost/mlpf-bmk:test-def"
SUBSET = ["--build-arg", "TRAIN_EVENTS=200", "--build-arg", "TEST_EVENTS=20"]
# No layer cache in the test builds: the images are removed at the end, so there is nothing to
# reuse, and committing every step's layer costs about a minute per big layer on two cores. With
# --force-rm a failed build leaves no container either: removing the two images removes everything.
NO_CACHE = ["--layers=false", "--force-rm"]
# What the two images must agree on: the baked data set and every installed Python package.
FACTS = ("cat /opt/hepbench/data/CHECKSUM; echo ==; /opt/hepbench/venv/bin/python -m pip freeze --all; echo ==; "
         "cat /opt/hepbench/data/info.json; echo ==; for t in g++ c++ cmake make; do command -v $t; done; echo ==; "
         "/opt/hepbench/venv/bin/horovodrun --check-build; true")


def sh(*args, check=True, timeout=3600, env=None):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def can_build() -> str | None:
    """Why the image cannot be built here, or None."""
    if all(shutil.which(t) for t in ("buildah", "podman", "runc", "debootstrap")):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "needs buildah/podman/runc/debootstrap, or root with apt-get to install them"
    return None


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    reason = can_build()
    if reason:
        pytest.skip(reason)
    sh(DEV, "tools")
    sh(DEV, "base")
    env = {**os.environ, "HEPBENCH_TRAIN_EVENTS": "200", "HEPBENCH_TEST_EVENTS": "20",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # spython from this environment
    def_log = tmp_path_factory.mktemp("build-def") / "build.log"
    with open(def_log, "w") as log:
        def_build = subprocess.Popen([DEV, "build-def", DEF_IMAGE, *NO_CACHE], stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
    try:
        docker_build = sh(DEV, "build", IMAGE, *SUBSET, *NO_CACHE, check=False)
        yield {"docker": docker_build, "def": def_build, "def_log": def_log}
    finally:
        if def_build.poll() is None:
            def_build.terminate()
            def_build.wait(120)
        # Each image is ~3 GB; with no layer cache and --force-rm they are all the builds left behind.
        sh("podman", "rmi", "--force", IMAGE, DEF_IMAGE, check=False)


@pytest.fixture(scope="module")
def image(builds):
    r = builds["docker"]
    assert r.returncode == 0, f"Dockerfile build failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return IMAGE


@pytest.fixture(scope="module")
def def_image(builds):
    rc = builds["def"].wait(3600)
    assert rc == 0, f"Singularity.def build failed ({rc}):\n{builds['def_log'].read_text()[-3000:]}"
    return DEF_IMAGE


def facts(image) -> dict:
    r = run(image, "--entrypoint", "sh", "--", "-c", FACTS)
    assert r.returncode == 0, r.stderr[-3000:]
    checksum, freeze, info, tools, horovod = r.stdout.split("==\n")
    return {"checksum": checksum.strip(), "freeze": sorted(freeze.split()), "info": json.loads(info),
            "tools": tools.strip(), "horovod": horovod}


@pytest.fixture(scope="module")
def image_facts(image):
    return facts(image)


def results_dir(tmp_path: Path, name: str, mode: int = 0o1777) -> Path:
    d = tmp_path / name
    d.mkdir()
    d.chmod(mode)  # as HEPscore does for the container's (possibly non-root) user
    return d


def run(image, *podman_and_driver_args, timeout=900):
    return sh(DEV, "run", image, *podman_and_driver_args, check=False, timeout=timeout)


def test_no_arguments_start_the_default_run_which_sigterm_stops_with_a_report(image, tmp_path):
    # The image's configuration adds nothing to the arguments (no CMD), so no arguments mean the
    # driver's defaults (entrypoint tests: `hepbench run --resultsdir /results --device auto`).
    config = json.loads(sh("podman", "image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["Entrypoint"] == ["/entrypoint.sh"] and not config.get("Cmd") and config["User"] == "1000:1000"
    # The default run, stopped by the runtime's SIGTERM once training has started: the driver
    # exec'd hepbench, so the signal reaches it and it writes a failure report (the complete
    # benchmark is the two-copy run below; a full default-length run adds ~2.5 minutes).
    res = results_dir(tmp_path, "a")
    name = f"hepbench-test-sigterm-{os.getpid()}"
    p = subprocess.Popen([DEV, "run", image, "--name", name, "-v", f"{res}:/results", "--"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    assert re.search(r"mlpf-bmk: 1 copy on cpu \(tensorflow\), \d+ thread\(s\) each; "
                     r"6 windows of 12 events after 2 warm-up", err)
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["run_info"]["copies"] == 1 and report["run_info"]["events_per_thread"] == 12
    assert report["report"]["status"] != "ok" and "interrupted by SIGTERM" in report["report"]["log"]
    assert not report["report"]["wl-scores"]
    # podman marks its containers with /run/.containerenv (not under --read-only, hence checked here).
    assert report["app"]["containment"] in ("docker", "podman")


def test_unprivileged_read_only_two_copies_give_a_valid_report(image, image_facts, tmp_path):
    # As HEPscore runs it under Apptainer: uid 1000, read-only image, only /results and /tmp writable.
    res = results_dir(tmp_path, "b")
    r = run(image, "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp", "-v", f"{res}:/results",
            "--", "-W", "-c", "2", "-t", "1", "-e", "2", "-x", "--warmup-steps", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["run_info"]["copies"] == 2 and report["run_info"]["threads_per_copy"] == 1
    assert report["run_info"]["extra_arguments"] == "--warmup-steps 1"
    assert report["report"]["wl-scores"]["train"] > 0 and report["report"]["log"] == "ok"
    assert [w["events"] for w in report["report"]["copies"][0]["windows"]] == [2] * 6  # the default 6 windows
    # Real checksums: the installed code is this tree's code; the data is what the image baked.
    assert report["app"]["bmk_checksum"] == bmk_checksum()
    assert report["app"]["bmkdata_checksum"] == image_facts["checksum"] and len(image_facts["checksum"]) == 64
    assert {"inputs.log", "version.json"} <= {p.name for p in res.iterdir()}


def test_mpirun_starts_two_horovod_ranks_that_talk_over_mpi(image, tmp_path):
    # The image's OpenMPI and its MPI-built Horovod, started the way a site's mpirun/srun would:
    # no driver, no --strategy (detected from mpirun's environment), hepbench from the image's PATH.
    res = results_dir(tmp_path, "mpi")
    r = run(image, "-v", f"{res}:/results", "--entrypoint", "mpirun", "--",
            "-np", "2", "--bind-to", "none", "--mca", "btl_vader_single_copy_mechanism", "none",  # no CMA in containers
            "hepbench", "run", "-w", "/results", "--threads", "1", "--events", "2", "--windows", "1",
            "--warmup-steps", "0", "--set", "bench.cpu_validation_events=0",  # MPI wiring, not the model
            "--num-graph-layers-id", "1", "--num-graph-layers-reg", "1",
            "--rank-timeout", "600")  # the default 120 s failed a run on a machine busy with other jobs
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["benchmark"]["strategy"] == "horovod" and rep["benchmark"]["controller"] == "mpi"
    assert [c["rank"] for c in rep["copies"]] == [0, 1]
    assert rep["wl-scores"]["train"] == pytest.approx(sum(c["train"]["events_per_second"] for c in rep["copies"]))


def test_the_qsvr_workload_runs_in_the_image(image, tmp_path):
    res = results_dir(tmp_path, "qsvr")
    r = run(image, "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp", "-v", f"{res}:/results",
            "--", "--workload", "qsvr", "-e", "3")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(res / "qsvr_summary.json")
    validate_report(report, "qsvr_summary.schema.json")
    assert report["app"]["name"] == "qsvr-bmk" and report["report"]["wl-scores"]["fits_per_second"] > 0


def test_unknown_option_prints_usage_and_writes_nothing(image, tmp_path):
    res = results_dir(tmp_path, "c")
    r = run(image, "-v", f"{res}:/results", "--", "-W", "--frobnicate")
    assert r.returncode != 0 and "Usage:" in r.stderr and "unknown option '--frobnicate'" in r.stderr
    assert list(res.iterdir()) == []


def test_unwritable_results_directory_is_a_clear_error(image, tmp_path):
    res = results_dir(tmp_path, "d", mode=0o555)  # root-owned, not writable for uid 1000
    r = run(image, "-v", f"{res}:/results", "--", "-W")
    assert r.returncode != 0 and "results directory /results is not writable" in r.stderr
    assert list(res.iterdir()) == []


def test_horovod_is_compiled_once_at_most_and_has_mpi_and_gloo_in_both_images(image_facts, def_image, builds):
    logs = builds["docker"].stdout + builds["docker"].stderr + builds["def_log"].read_text()
    compiled = re.findall(r"install\.sh: Horovod compiled: (\S+)", logs)
    stored = re.findall(r"install\.sh: Horovod from the stored wheel (\S+)", logs)
    assert len(compiled) + len(stored) == 2 and len(compiled) <= 1, compiled + stored
    # The wheel store is keyed by what the build links against: both images use OpenMPI's key.
    assert all("-openmpi" in path for path in compiled + stored), compiled + stored
    for got in (image_facts, facts(def_image)):
        assert re.search(r"\[X\] TensorFlow", got["horovod"]), got["horovod"]
        assert re.search(r"\[X\] MPI", got["horovod"]) and re.search(r"\[X\] Gloo", got["horovod"]), got["horovod"]


def test_the_singularity_definition_builds_the_same_image_with_buildah_via_spython(def_image, image_facts):
    # spython turns %files/%post/%environment/%runscript into a Dockerfile (built beside the
    # Dockerfile's image, see the module docstring), from the same base and install script, so
    # the checks below compare two independent builds.
    # spython turns %runscript into a shell-form CMD, which arguments replace: name the entry point.
    r = run(def_image, "--entrypoint", "/entrypoint.sh", "--", "-h")
    assert r.returncode == 0 and r.stdout.startswith("Usage:")
    got = facts(def_image)
    assert got["tools"] == "" == image_facts["tools"]  # build packages stripped, as in the two-stage image
    # The same install script, phases and settings: the same generated data set, the same packages.
    assert got["info"]["splits"]["train"]["events"] == 200
    assert got["checksum"] == image_facts["checksum"] and len(got["checksum"]) == 64
    assert got["freeze"] == image_facts["freeze"]
