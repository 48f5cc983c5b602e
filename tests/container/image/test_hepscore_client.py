"""The real HEPscore client (hep-score v1.5, the version the HEP Benchmark Suite v3.1 pins) scores
the image in both of its container modes (slow: part of CI).

Docker mode runs `docker run ...` (here a `docker` that is podman with runc, as container/dev.sh
runs it); singularity mode runs `singularity run -c -e ...` (the real Apptainer) on the SIF. Each
uses its shipped configuration (hepscore/mlpf-bmk-docker.yaml, hepscore/mlpf-bmk.yaml) as a site
does after pushing the image: only `settings.registry` and the benchmark's `version` changed,
plus, for CI time, `repetitions: 1` and `args.events: 2` (2 training events per timed window
instead of 24). These are the complete runs of the default model in CI.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from hepbench.core.schema import load_report, validate_report
from tests.shared_folder import need_shared

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def client(shared_dir):
    path = shared_dir / "clients" / "hep-score-1.5"
    need_shared(path / "hepscore" / "main.py", "the HEPscore v1.5 client")
    return path


def shipped_config(name: str, registry: str, version: str) -> dict:
    conf = yaml.safe_load((ROOT / "hepscore" / name).read_text())
    assert "hepscore_benchmark" in conf, f"hepscore/{name}: hep-score v1.5 reads only the top key hepscore_benchmark"
    bench = conf["hepscore_benchmark"]
    bench["settings"]["registry"] = registry
    bench["benchmarks"]["mlpf-bmk"]["version"] = version
    bench["settings"]["repetitions"] = 1
    bench["benchmarks"]["mlpf-bmk"]["args"]["events"] = 2
    return conf


def hepscore(client, sh, mode: str, conf: dict, out: Path, env: dict):
    """Runs `hep-score -m MODE -f CONF OUT` from the client's source; returns (its report, the run's summary)."""
    conf_path = out.parent / f"{out.name}.yaml"
    conf_path.write_text(yaml.safe_dump(conf))
    out.mkdir()
    main = ("import sys; from hepscore.main import main; "
            f"sys.argv = ['hep-score', '-m', {mode!r}, '-f', {str(conf_path)!r}, {str(out)!r}]; main()")
    # Its __init__ reads its version through pbr (the test extra), which a source tree gives only
    # through PBR_VERSION: the ChangeLog's top entry.
    version = (client / "ChangeLog").read_text().split()[0].lstrip("v")
    r = sh(sys.executable, "-c", main, env={**env, "PYTHONPATH": str(client), "PBR_VERSION": version}, check=False,
           timeout=1800)
    (rundir,) = out.glob("HEPscore_*")
    name = conf["hepscore_benchmark"]["settings"]["name"]
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted(rundir.rglob("*_logs")))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs
    report = json.loads((rundir / f"{name}.json").read_text())
    summary = load_report(rundir / "mlpf-bmk" / "run0" / "mlpf_summary.json")
    validate_report(summary)
    return report, summary


def assert_scored(report: dict, summary: dict, conf: dict):
    # HEPscore's score: round(wl-scores.train / ref_scores.train, 4), the geometric mean of one
    # benchmark of weight 1, times scaling 1, the median of one repetition.
    ref = conf["hepscore_benchmark"]["benchmarks"]["mlpf-bmk"]["ref_scores"]["train"]
    train = summary["report"]["wl-scores"]["train"]
    assert report["status"] == "success" and train > 0
    assert report["score"] == round(train / ref, 4)
    assert report["wl-scores"]["mlpf-bmk"] == {"train": train, "train_ref": ref}
    run = report["benchmarks"]["mlpf-bmk"]
    assert run["app"]["bmk_checksum"] == summary["app"]["bmk_checksum"] and run["run_info"]["copies"] == 1
    # The run is the default benchmark, with HEPscore's options: the driver's -W --copies 1 --events 2.
    assert summary["run_info"]["events_per_thread"] == 2 and summary["report"]["log"] == "ok"


def test_hepscore_docker_mode_scores_the_image_through_podman(image, client, sh, tmp_path):
    shim = tmp_path / "bin" / "docker"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\n# docker for hep-score: podman with runc (container/dev.sh)\n"
                    f"CONTAINERS_CONF={ROOT / 'container' / 'containers.conf'} exec podman --runtime /usr/bin/runc \"$@\"\n")
    shim.chmod(0o755)
    registry, name = image.rsplit("/", 1)  # localhost/mlpf-bmk:TAG: hep-score's REGISTRY/BENCHMARK:VERSION
    conf = shipped_config("mlpf-bmk-docker.yaml", f"docker://{registry}", name.split(":")[1])
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}
    report, summary = hepscore(client, sh, "docker", conf, tmp_path / "out", env)
    assert_scored(report, summary, conf)
    assert "podman_version" in report["environment"]  # HEPscore saw podman behind `docker`
    assert summary["app"]["containment"] == "podman"


def test_hepscore_singularity_mode_scores_the_sif_through_apptainer(image, sif, client, apptainer_bin, apptainer_env,
                                                                   sh, tmp_path):
    if not (apptainer_bin / "singularity").exists():
        pytest.skip(f"hep-score's singularity mode runs `singularity`: none beside {apptainer_bin / 'apptainer'}")
    version = image.split(":")[1]  # the SIF is named after the image's tag
    conf = shipped_config("mlpf-bmk.yaml", f"dir://{tmp_path / 'registry'}", version)
    # Where hep-score looks: REGISTRY/mlpf-bmk:VERSION, with `_<arch>` appended (addarch: true).
    suffix = f"_{os.uname().machine}" if conf["hepscore_benchmark"]["settings"].get("addarch") else ""
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / f"mlpf-bmk:{version}{suffix}").symlink_to(sif)
    report, summary = hepscore(client, sh, "singularity", conf, tmp_path / "out", apptainer_env)
    assert_scored(report, summary, conf)
    assert "apptainer_version" in report["environment"]  # HEPscore saw Apptainer behind `singularity`
    assert summary["app"]["containment"] == "apptainer"
