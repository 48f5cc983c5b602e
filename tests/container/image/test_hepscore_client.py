"""The real clients score the image in both container modes (slow: part of CI): the HEP Benchmark
Suite 3.1 (`bmkrun`, which runs the hep-score 1.5 it pins in its own process) with the shipped
hepscore/bmkrun.yaml, `bmkrun -m docker` and `bmkrun -m singularity` as the README tells a site;
and hep-score 2.0.1 in docker mode with hepscore/v2/mlpf-bmk.yaml (tests/container/clients.py).

Docker mode runs `docker run ...` (here a `docker` that is podman with runc, as container/dev.sh
runs it); singularity mode runs `singularity run -c -e ...` (the real Apptainer) on the SIF. As at
a site after pushing the image, only where the image comes from changes: bmkrun.yaml's
`global.rundir`, and its `hepscore.config`, which names a copy of the file it names with
`settings.registry` pointed at this session's image (docker mode: a tag of it under a registry
path of this session, with the shipped version; singularity mode: a `dir://` folder holding the
SIF under the name hep-score looks for). For CI time the copies also set `repetitions: 1` and
`args.events: 2` (2 training events per timed window instead of 24). These are the complete runs
of the default model in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hepbench.core.schema import load_report, validate_report
from tests.container.clients import DEPRECATED_KEY, HEPSCORE_2, HEPSCORE_DIR, ROOT, HepScore

pytestmark = pytest.mark.slow
BMKRUN = HEPSCORE_DIR / "bmkrun.yaml"
V2_CONFIG = HEPSCORE_DIR / "v2" / "mlpf-bmk.yaml"


def shipped(path: Path) -> tuple[dict, dict]:
    """A hepscore/ file and its (top key's) content, with the CI-time cuts: one repetition, 2 events."""
    conf = yaml.safe_load(path.read_text())
    (body,) = conf.values()
    body["settings"]["repetitions"] = 1
    body["benchmarks"]["mlpf-bmk"]["args"]["events"] = 2
    return conf, body


def bmkrun_config() -> tuple[dict, dict]:
    """bmkrun.yaml, and the hep-score configuration it names (CI-time cuts made)."""
    suite = yaml.safe_load(BMKRUN.read_text())
    return suite, shipped(ROOT / suite["hepscore"]["config"])[0]


@pytest.fixture(scope="module")
def registry(image, sh):
    """docker://REGISTRY under which the image is REGISTRY/mlpf-bmk:VERSION, as hep-score names it,
    with the shipped VERSION (the same in the files tested here; a tag of this session, removed after)."""
    versions = {
        body["benchmarks"]["mlpf-bmk"]["version"]
        for body in (bmkrun_config()[1]["hepscore_benchmark"], shipped(V2_CONFIG)[1])
    }
    (version,) = versions
    path = f"localhost/hepbench-test-{os.getpid()}"
    sh("podman", "tag", image, f"{path}/mlpf-bmk:{version}")
    yield f"docker://{path}"
    sh("podman", "untag", image, f"{path}/mlpf-bmk:{version}", check=False)


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory):
    """The environment with a `docker` first on the PATH: podman with runc (container/dev.sh)."""
    shim = tmp_path_factory.mktemp("docker-shim") / "docker"
    conf = ROOT / "container" / "containers.conf"
    shim.write_text(
        f"#!/bin/sh\n# docker for bmkrun and hep-score: podman with runc (container/dev.sh)\n"
        f'CONTAINERS_CONF={conf} exec podman --runtime /usr/bin/runc "$@"\n'
    )
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}


def run_bmkrun(suite_bin: Path, mode: str, hepscore_conf: dict, tmp_path: Path, env: dict) -> tuple[dict, dict]:
    """`bmkrun -m MODE -c COPY` from the repository root, COPY being bmkrun.yaml with its rundir and
    its hepscore.config (a copy of `hepscore_conf`) changed; returns bmkrun_report.json and the run's summary."""
    (tmp_path / "mlpf-bmk.yaml").write_text(yaml.safe_dump(hepscore_conf))
    suite = yaml.safe_load(BMKRUN.read_text())
    suite["global"]["rundir"] = str(tmp_path / "rundir")
    suite["hepscore"]["config"] = str(tmp_path / "mlpf-bmk.yaml")
    (tmp_path / "bmkrun.yaml").write_text(yaml.safe_dump(suite))
    # The Suite's venv last on the PATH: the engines come first, bmkrun by its path.
    r = subprocess.run(
        [suite_bin / "bmkrun", "-m", mode, "-c", tmp_path / "bmkrun.yaml"],
        cwd=ROOT,
        env={**env, "PATH": f"{env['PATH']}:{suite_bin}"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    (rundir,) = (tmp_path / "rundir").glob("run_*")
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted(rundir.rglob("*_logs")))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs
    report = json.loads((rundir / "bmkrun_report.json").read_text())
    assert report["profiles"]["hepscore"]["status"] == "success", r.stdout[-3000:] + logs
    assert report["plugins"]["CommandExecutor"]["hepscore"]["load"]["values"]  # sampled during the run
    summary = load_report(rundir / "HEPSCORE" / "mlpf-bmk" / "run0" / "mlpf_summary.json")
    validate_report(summary)
    return report["profiles"]["hepscore"], summary


def run_hep_score(client: HepScore, mode: str, conf: dict, out: Path, env: dict) -> tuple[dict, dict, str]:
    """`hep-score -m MODE -f CONF OUT` from the client's source; returns its report, the run's summary
    and its output."""
    conf_path = out.parent / f"{out.name}.yaml"
    conf_path.write_text(yaml.safe_dump(conf))
    out.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "hepscore.main", "-m", mode, "-f", conf_path, out],
        env=client.env(env),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    (rundir,) = out.glob("HEPscore_*")
    (body,) = conf.values()
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted(rundir.rglob("*_logs")))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs
    report = json.loads((rundir / f"{body['settings']['name']}.json").read_text())
    summary = load_report(rundir / "mlpf-bmk" / "run0" / "mlpf_summary.json")
    validate_report(summary)
    return report, summary, r.stdout + r.stderr


def assert_scored(report: dict, summary: dict, conf: dict):
    # HEPscore's score: round(wl-scores.train / ref_scores.train, 4), the geometric mean of one
    # benchmark of weight 1, times scaling 1, the median of one repetition.
    (body,) = conf.values()
    ref = body["benchmarks"]["mlpf-bmk"]["ref_scores"]["train"]
    train = summary["report"]["wl-scores"]["train"]
    assert report["status"] == "success" and train > 0
    assert report["score"] == round(train / ref, 4)
    assert report["wl-scores"]["mlpf-bmk"] == {"train": train, "train_ref": ref}
    run = report["benchmarks"]["mlpf-bmk"]
    assert run["app"]["bmk_checksum"] == summary["app"]["bmk_checksum"] and run["run_info"]["copies"] == 1
    # The run is the default benchmark, with HEPscore's options: the driver's -W --copies 1 --events 2.
    assert summary["run_info"]["events_per_thread"] == 2 and summary["report"]["log"] == "ok"


def test_bmkrun_docker_mode_scores_the_image_through_podman(registry, suite_bin, docker_env, tmp_path):
    _, conf = bmkrun_config()
    conf["hepscore_benchmark"]["settings"]["registry"] = registry
    report, summary = run_bmkrun(suite_bin, "docker", conf, tmp_path, docker_env)
    assert_scored(report, summary, conf)
    assert "podman_version" in report["environment"]  # hep-score saw podman behind `docker`
    assert summary["app"]["containment"] == "podman"


def test_bmkrun_singularity_mode_scores_the_sif_through_apptainer(
    image, sif, suite_bin, apptainer_bin, apptainer_env, tmp_path
):
    if not (apptainer_bin / "singularity").exists():
        pytest.skip(f"bmkrun's singularity mode runs `singularity`: none beside {apptainer_bin / 'apptainer'}")
    _, conf = bmkrun_config()
    settings, bench = conf["hepscore_benchmark"]["settings"], conf["hepscore_benchmark"]["benchmarks"]["mlpf-bmk"]
    settings["registry"] = f"dir://{tmp_path / 'registry'}"
    # Where hep-score looks: REGISTRY/mlpf-bmk:VERSION, with `_<arch>` appended if addarch.
    suffix = f"_{os.uname().machine}" if settings.get("addarch") else ""
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / f"mlpf-bmk:{bench['version']}{suffix}").symlink_to(sif)
    report, summary = run_bmkrun(suite_bin, "singularity", conf, tmp_path, apptainer_env)
    assert_scored(report, summary, conf)
    assert "apptainer_version" in report["environment"]  # hep-score saw Apptainer behind `singularity`
    assert summary["app"]["containment"] == "apptainer"


def test_hepscore_2_docker_mode_scores_the_image_with_its_own_configuration(registry, docker_env, tmp_path):
    conf, body = shipped(V2_CONFIG)
    # The registry list as shipped, its docker:// entry pointed at this session's image.
    registries = body["settings"]["registry"]
    (docker,) = [i for i, r in enumerate(registries) if r.startswith("docker://")]
    registries[docker] = registry
    report, summary, output = run_hep_score(HEPSCORE_2, "docker", conf, tmp_path / "out", docker_env)
    assert_scored(report, summary, conf)
    assert DEPRECATED_KEY not in output
    assert report["settings"]["registry"] == registry  # the entry docker mode takes from the list
    assert report["app_info"]["hepscore_ver"] == HEPSCORE_2.version
    assert "podman_version" in report["environment"] and summary["app"]["containment"] == "podman"
