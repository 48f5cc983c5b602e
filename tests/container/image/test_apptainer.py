"""The image as a SIF under a real Apptainer, in the two forms sites use (slow: part of CI).

`apptainer run` starts the driver as HEPscore does; `apptainer exec ... hepbench run` is the form
of the SLURM examples, with the image's own environment (PATH, HEPBENCH_DATA_DIR) and nothing of
the host's (--cleanenv). Both run with --contain and a --workdir, so what the container writes to
/tmp, /var/tmp and $HOME lands in host folders the test inspects: only /results and /tmp may
receive anything (the SIF itself is a read-only squashfs). The exec run is unprivileged where
this machine allows it (see `unprivileged`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hepbench.core.schema import load_report, validate_report

pytestmark = pytest.mark.slow
NOBODY = 65534


@pytest.fixture(scope="module")
def unprivileged(apptainer_bin, scratch):
    """(command, options, uid): Apptainer run as the user nobody, without setuid help: Apptainer
    then works in a user namespace, as on most sites, and mounts the SIF with squashfuse, which
    needs /dev/fuse. On a standard distribution /dev/fuse is world-usable (mode 0666); here it is
    root's alone (0600). The set-up script's wrapper must start as root (it enters Apptainer's
    Debian root through a private mount namespace), so a copy of it binds a world-usable node of
    the same device over /dev/fuse in that namespace alone (the host's stays as it is), then drops
    to nobody just before it starts apptainer. A system Apptainer is started through setpriv and,
    where nobody cannot open /dev/fuse, given --unsquash (the SIF unpacked to a temporary folder)."""
    wrapper = apptainer_bin / "apptainer"
    text = wrapper.read_text(errors="replace") if wrapper.stat().st_size < 100_000 else ""
    start = 'exec apptainer "$@"\''
    drop = f"--reuid={NOBODY} --regid={NOBODY} --clear-groups"
    if start in text and Path("/dev/fuse").exists():
        dev = os.stat("/dev/fuse").st_rdev
        fuse = (
            f"mount -t tmpfs -o size=64k,mode=755 hepbench-fuse /mnt; "
            f"mknod -m 666 /mnt/fuse c {os.major(dev)} {os.minor(dev)}; mount --bind /mnt/fuse /dev/fuse; "
        )
        copy = scratch / "apptainer-nobody"
        copy.write_text(text.replace(start, f'{fuse}exec setpriv {drop} apptainer "$@"\''))
        copy.chmod(0o755)
        return [str(copy)], [], NOBODY
    fuse_for_all = Path("/dev/fuse").exists() and os.stat("/dev/fuse").st_mode & 0o006 == 0o006
    unsquash = [] if fuse_for_all else ["--unsquash"]
    if os.geteuid() != 0:
        return [str(wrapper)], unsquash, os.geteuid()  # already unprivileged
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv to run Apptainer as an unprivileged user")
    return ["setpriv", *drop.split(), str(wrapper)], unsquash, NOBODY


def contained(scratch, name):
    """Host folders for the container's /results and, through --workdir, its /tmp, /var/tmp and $HOME."""
    res, work = scratch / f"{name}-results", scratch / f"{name}-work"
    for d in (res, work):
        d.mkdir()
        d.chmod(0o1777)
    return res, work, ["--cleanenv", "--contain", "--workdir", str(work), "--bind", f"{res}:/results"]


def written_outside_results_and_tmp(work: Path) -> list[str]:
    return sorted(
        str(p.relative_to(work)) for d in ("home", "var_tmp") if (work / d).exists() for p in (work / d).rglob("*")
    )


def test_apptainer_run_starts_the_driver_in_a_clean_contained_environment(
    sif, apptainer_env, image_facts, sh, scratch, tiny
):
    res, work, opts = contained(scratch, "run")
    r = sh("apptainer", "run", *opts, sif, "-W", "-e", "2", "-x", *tiny, env=apptainer_env, check=False, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["app"]["containment"] == "apptainer" and report["report"]["log"] == "ok"
    assert report["report"]["wl-scores"]["train"] > 0
    assert report["app"]["bmkdata_checksum"] == image_facts["checksum"]  # the baked data, found without the host's env
    assert written_outside_results_and_tmp(work) == []


def test_apptainer_exec_runs_hepbench_from_the_images_path_as_an_unprivileged_user(
    sif, apptainer_env, unprivileged, image_facts, sh, scratch, tiny
):
    res, work, opts = contained(scratch, "exec")
    command, unsquash, uid = unprivileged  # Apptainer's own choice: squashfuse (see `unprivileged`)
    r = sh(
        *command,
        "exec",
        *unsquash,
        *opts,
        sif,
        "hepbench",
        "run",
        "-w",
        "/results",
        "--device",
        "cpu",
        "--events",
        "2",
        *tiny,
        env=apptainer_env,
        check=False,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = load_report(res / "mlpf_summary.json")
    validate_report(report)
    assert report["app"]["containment"] == "apptainer" and report["report"]["log"] == "ok"
    assert report["app"]["bmkdata_checksum"] == image_facts["checksum"]  # HEPBENCH_DATA_DIR from the image
    assert {p.stat().st_uid for p in res.iterdir()} == {uid}
    assert written_outside_results_and_tmp(work) == []
