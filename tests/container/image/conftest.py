"""The image as sites get it, built once for this package: the Dockerfile's image (buildah), run by
podman, converted to a SIF (podman save as an OCI layout → `apptainer build`) and run by a real
Apptainer, and both driven by the real HEPscore client.

Built with a smaller generated subset (200 + 20 events instead of 2,000 + 200) to keep CI short;
everything else is the image `docker build .` gives. The build reads the host's pip cache and the
Horovod wheel store (container/dev.sh), so Horovod is compiled only when the store has no wheel
for this TensorFlow, Python and MPI. The Dockerfile's `deps` and `runtime` stages (everything that
changes only with pyproject.toml or the install script, about 6.5 GB: runtime holds a copy of the
venv) stay tagged on the machine as the next session's layer cache; the rest of what the build made
is removed at the end.
Apptainer: the one on the PATH, else the project's shared set-up script for Debian bookworm
(root), else the Apptainer tests are skipped and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.shared_folder import SHARED, need_shared

ROOT = Path(__file__).resolve().parents[3]
DEV = str(ROOT / "container" / "dev.sh")
# A tag of this session: two test sessions on one machine (a CI clone beside a checkout) must not
# build, run or remove each other's image.
IMAGE = f"localhost/mlpf-bmk:test-{os.getpid()}"
# runc failing to seal its memfd copy of itself while another container starts ("Close_Fd sealing
# memfd copy: Device or resource busy", seen in CI on 7 December 2026 in a RUN step of a build that
# passed on the next try): a build step that fails with it is built again, once.
RUNC_TRANSIENT = "sealing memfd copy: Device or resource busy"
SUBSET = ["--build-arg", "TRAIN_EVENTS=200", "--build-arg", "TEST_EVENTS=20"]
# The layer cache kept between sessions: one tag per stage for the machine (whichever session built
# last moves it; the stages' content depends only on pyproject.toml and install.sh).
CACHE_STAGES = {"deps": "localhost/mlpf-bmk:test-cache-deps", "runtime": "localhost/mlpf-bmk:test-cache-runtime"}
# `hepbench run` options of a run that exercises the container, not the model: one graph layer
# each, one timed window, no warm-up or validation, a short matmul ceiling (with `--events 2`, which
# the driver takes as -e).
TINY = [
    "--num-graph-layers-id",
    "1",
    "--num-graph-layers-reg",
    "1",
    "--windows",
    "1",
    "--warmup-steps",
    "0",
    "--set",
    "bench.cpu_validation_events=0",
    "--set",
    "bench.ceiling_seconds=0.2",
]


def sh(*args, check=True, timeout=3600, env=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        )
    return r


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared folder (tools, third-party clients): tests/shared_folder.py."""
    return SHARED


@pytest.fixture(name="sh", scope="session")
def sh_fixture():
    """sh(*args, check=True, timeout=3600, env=None): run a command, raising with its output if it fails."""
    return sh


@pytest.fixture(scope="session")
def tiny():
    """The `hepbench run` options of a tiny run (see TINY); add `--events 2`."""
    return list(TINY)


@pytest.fixture(scope="session")
def dev_sh():
    return DEV


@pytest.fixture(scope="package")
def scratch():
    """A world-readable scratch folder under /var/tmp (pytest's tmp folders are private to root,
    and the unprivileged Apptainer run must reach the SIF and its results): removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="mlpf-bmk-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def build():
    """The Dockerfile's image: the build's result (the test of the build reads its log)."""
    have = all(shutil.which(t) for t in ("buildah", "podman", "runc", "debootstrap"))
    if not have and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        pytest.skip("needs buildah/podman/runc/debootstrap, or root with apt-get to install them")
    sh(DEV, "tools")
    sh(DEV, "base")
    before = untagged_images()
    try:
        # The cache stages first, each tagged (--force-rm: a failed step leaves no container), then
        # the image on them from the layer cache.
        steps = {}
        for stage, tag in [*CACHE_STAGES.items(), ("image", IMAGE)]:
            args = SUBSET if stage == "image" else ["--target", stage]
            for _ in range(2):
                steps[stage] = sh(DEV, "build", tag, *args, "--force-rm", check=False)
                # The container runtime's own transient failure, not the build's: once more.
                if steps[stage].returncode == 0 or RUNC_TRANSIENT not in steps[stage].stderr + steps[stage].stdout:
                    break
            if steps[stage].returncode != 0:
                break
        yield Build(steps)
    finally:
        sh("podman", "rmi", "--force", IMAGE, check=False)
        remove_new_untagged(before)


@dataclass
class Build:
    """The image's build: each `dev.sh build`'s result by stage (deps, runtime, image), up to the
    first that failed."""

    steps: dict[str, subprocess.CompletedProcess]

    @property
    def returncode(self) -> int:
        return next((r.returncode for r in self.steps.values() if r.returncode), 0)

    def log(self, stage: str | None = None) -> str:
        """One stage's output (stdout, then stderr), or all of them."""
        return "".join(r.stdout + r.stderr for name, r in self.steps.items() if stage in (None, name))


def untagged_images() -> set[str]:
    """The IDs of untagged images without children (a layer cache's leftovers, podman's "dangling")."""
    r = sh("podman", "images", "--all", "--quiet", "--no-trunc", "--filter", "dangling=true", check=False)
    return set(r.stdout.split())


def remove_new_untagged(before: set[str]) -> None:
    """Remove what this session's builds left untagged (the layers of hepbench, its data and the
    image, a few GB each time), parents after children, and never an image that was there before
    or one a container uses (another session's build in progress: plain rmi refuses)."""
    for _ in range(50):  # each round frees the parents of the last
        new = untagged_images() - before
        if not new:
            return
        sh("podman", "rmi", *sorted(new), check=False)
        if untagged_images() - before == new:  # nothing more can go
            return


@pytest.fixture(scope="package")
def image(build):
    assert build.returncode == 0, f"Dockerfile build failed ({build.returncode}):\n{build.log()[-6000:]}"
    return IMAGE


@pytest.fixture(scope="package")
def image_facts(image):
    """`container/dev.sh facts`: the baked data checksum, pip freeze, build tools, Horovod's build."""
    out = sh(DEV, "facts", image).stdout
    sections = dict(part.split("\n", 1) for part in out.split("== ")[1:])
    return {
        "checksum": sections["data"].split()[0],
        "freeze": sections["pip freeze"].split(),
        "tools": sections["build tools"].strip(),
        "horovod": sections["horovod"],
    }


@pytest.fixture
def podman():
    """podman(image, *podman_args, '--', *entrypoint_args): `container/dev.sh run`, never raising."""

    def run(image, *args, timeout=900):
        return sh(DEV, "run", image, *args, check=False, timeout=timeout)

    return run


@pytest.fixture
def results_dir(tmp_path):
    def make(name: str, mode: int = 0o1777, parent: Path | None = None) -> Path:
        d = (parent or tmp_path) / name
        d.mkdir()
        d.chmod(mode)  # as HEPscore does for the container's (possibly non-root) user
        return d

    return make


@pytest.fixture(scope="package")
def apptainer_bin(shared_dir) -> Path:
    """A folder with `apptainer` and `singularity` (a real Apptainer) for the PATH."""
    found = shutil.which("apptainer")
    if found:
        return Path(found).parent
    script = need_shared(
        shared_dir / "tools" / "apptainer-on-bookworm.sh", "no apptainer on the PATH, and its set-up script"
    )
    if os.geteuid() != 0:
        pytest.skip("no apptainer on the PATH; setting one up on Debian bookworm needs root")
    base = Path(os.environ.get("APPTAINER_BASE", "/var/tmp/apptainer-sid"))
    sh("bash", script, env={**os.environ, "APPTAINER_BASE": str(base)}, timeout=900)
    return base / "bin"


@pytest.fixture(scope="package")
def apptainer_env(apptainer_bin):
    return {**os.environ, "PATH": f"{apptainer_bin}:{os.environ['PATH']}"}


@pytest.fixture(scope="package")
def sif(image, apptainer_env, scratch) -> Path:
    """The image converted by Apptainer from its OCI form (podman save), as sites convert a
    Docker image. Squashfs with zstd, not Apptainer's default gzip: on two cores 14 s instead of
    about 5 minutes (docs/containers.md), the same files and the same SIF otherwise."""
    out = scratch / "mlpf-bmk.sif"
    try:
        sh(DEV, "sif", image, out, "--mksquashfs-args", "-comp zstd -Xcompression-level 3", env=apptainer_env)
        out.chmod(0o444)  # world-readable for the unprivileged run; read-only like every SIF
        yield out
    finally:
        out.unlink(missing_ok=True)
