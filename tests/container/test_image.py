"""The image, built and run the way sites run it (slow: part of CI, see container/dev.sh).

Built from the Dockerfile on the local Debian base with a smaller generated subset (200 + 20 events
instead of 2,000 + 200) to keep CI short; everything else is the image `docker build .` gives.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hepbench.report.hostinfo import bmk_checksum
from hepbench.report.schema import load_report, validate_report

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEV = str(ROOT / "container" / "dev.sh")
IMAGE = "localhost/mlpf-bmk:test"
DEF_IMAGE = "localhost/mlpf-bmk:test-def"
SUBSET = ["--build-arg", "TRAIN_EVENTS=200", "--build-arg", "TEST_EVENTS=20"]


def sh(*args, check=True, timeout=3600):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
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
def image():
    reason = can_build()
    if reason:
        pytest.skip(reason)
    sh(DEV, "tools")
    sh(DEV, "base")
    sh(DEV, "build", IMAGE, *SUBSET)
    yield IMAGE
    # Each build leaves ~3 GB of images and layers: a few runs would fill a development disk.
    sh("podman", "rmi", "--force", IMAGE, DEF_IMAGE, check=False)
    sh("podman", "image", "prune", "--force", check=False)


def results_dir(tmp_path: Path, name: str, mode: int = 0o1777) -> Path:
    d = tmp_path / name
    d.mkdir()
    d.chmod(mode)  # as HEPscore does for the container's (possibly non-root) user
    return d


def run(image, *podman_and_driver_args, timeout=900):
    return sh(DEV, "run", image, *podman_and_driver_args, check=False, timeout=timeout)


def test_no_arguments_give_a_valid_default_run(image, tmp_path):
    res = results_dir(tmp_path, "a")
    r = run(image, "-v", f"{res}:/results", "--")
    assert r.returncode == 0, r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["report"]["wl-scores"]["train"] > 0
    assert report["run_info"]["copies"] == 1 and report["run_info"]["events_per_thread"] == 24
    assert report["app"]["containment"] in ("docker", "podman")
    # Real checksums: the installed code is this tree's code; the data is what the image baked.
    assert report["app"]["bmk_checksum"] == bmk_checksum()
    baked = run(image, "--entrypoint", "cat", "--", "/opt/hepbench/data/CHECKSUM").stdout.strip()
    assert report["app"]["bmkdata_checksum"] == baked and len(baked) == 64
    assert {"inputs.log", "version.json"} <= {p.name for p in res.iterdir()}


def test_unprivileged_read_only_two_copies(image, tmp_path):
    res = results_dir(tmp_path, "b")
    r = run(image, "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp", "-v", f"{res}:/results",
            "--", "-W", "-c", "2", "-t", "1", "-e", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["run_info"]["copies"] == 2 and report["run_info"]["threads_per_copy"] == 1
    assert report["report"]["wl-scores"]["train"] > 0
    assert [w["events"] for w in report["report"]["copies"][0]["windows"]] == [4, 4, 4]


def test_mpirun_starts_two_horovod_ranks_that_talk_over_mpi(image, tmp_path):
    # The image's OpenMPI and its MPI-built Horovod, started the way a site's mpirun/srun would:
    # no driver, no --strategy (detected from mpirun's environment), hepbench from the image's PATH.
    res = results_dir(tmp_path, "mpi")
    r = run(image, "-v", f"{res}:/results", "--entrypoint", "mpirun", "--",
            "-np", "2", "--bind-to", "none", "--mca", "btl_vader_single_copy_mechanism", "none",  # no CMA in containers
            "hepbench", "run", "-w", "/results", "--threads", "1", "--events", "2", "--windows", "1",
            "--warmup-steps", "0", "--set", "bench.cpu_validation_events=0",  # MPI wiring, not the model
            "--num-graph-layers-id", "1", "--num-graph-layers-reg", "1")
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


def test_the_singularity_definition_builds_with_buildah_via_spython(image):
    # spython turns %files/%post/%environment/%runscript into a Dockerfile; the build reuses the
    # pip cache of the first build, so Horovod is not compiled twice.
    env = {**os.environ, "HEPBENCH_TRAIN_EVENTS": "200", "HEPBENCH_TEST_EVENTS": "20",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # spython from this environment
    r = subprocess.run([DEV, "build-def", DEF_IMAGE], capture_output=True, text=True, timeout=3600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    # spython turns %runscript into a shell-form CMD, which arguments replace: name the entry point.
    r = run(DEF_IMAGE, "--entrypoint", "/entrypoint.sh", "--", "-h")
    assert r.returncode == 0 and r.stdout.startswith("Usage:")
    checksum = run(DEF_IMAGE, "--entrypoint", "cat", "--", "/opt/hepbench/data/CHECKSUM").stdout.strip()
    assert len(checksum) == 64
    # The same install script, phases and settings give the same generated data set.
    tools = run(DEF_IMAGE, "--entrypoint", "sh", "--", "-c", "command -v g++ cmake || echo none").stdout
    assert tools.strip() == "none"  # build packages stripped
    info = json.loads(run(DEF_IMAGE, "--entrypoint", "cat", "--", "/opt/hepbench/data/info.json").stdout)
    assert info["splits"]["train"]["events"] == 200
