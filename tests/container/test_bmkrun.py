"""hepscore/bmkrun.yaml in the real HEP Benchmark Suite 3.1 (`bmkrun`, with the hep-score 1.5 it
pins: tests/container/clients.py), run as the README tells a site, from the repository root, with
only `global.rundir` changed, in each mode its header names.

The container engine is a stand-in (`docker` or `singularity` first on the PATH) that answers the
Suite's and hep-score's version queries and, for `run`, writes the summary a container would: what
is checked is everything around the container (the Suite's preflight, its plugins, the hep-score
configuration it names, the image and arguments hep-score starts, the score in bmkrun_report.json).
The image tests run the same with the real image under podman and Apptainer.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.container.clients import HEPSCORE_1_5, HEPSCORE_DIR, ROOT, SUITE, hepscore_argv, read_header

BMKRUN = HEPSCORE_DIR / "bmkrun.yaml"
FAKE_TRAIN = 0.5  # the stand-in's training events/s in run0; run N reports (N + 1) times it
FAKE_ENGINE = '''#!/usr/bin/env python3
"""A stand-in docker or singularity: version queries, and `run ... IMAGE -W ARGS` writing a summary."""
import json, os, sys
engine, argv = os.path.basename(sys.argv[0]), sys.argv[1:]
if argv[:1] == ["version"]:                      # the Suite's preflight
    print("24.0.7")
elif argv == ["--version"]:                      # hep-score's report of the engine
    print(engine + " version 24.0.7")
elif argv[:1] == ["run"] and "-W" in argv:
    (results,) = [argv[i + 1][:-len(":/results")] for i, a in enumerate(argv)
                  if a in ("-v", "-B") and argv[i + 1].endswith(":/results")]
    with open(os.environ["FAKE_ENGINE_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\\n")
    train = float(os.environ["FAKE_TRAIN"]) * (int(os.path.basename(results).removeprefix("run")) + 1)
    summary = {"app": {"version": "stand-in", "containment": engine}, "run_info": {"copies": 1},
               "report": {"wl-scores": {"train": train}, "log": "ok"}}
    with open(os.path.join(results, "mlpf_summary.json"), "w") as f:
        json.dump(summary, f)
'''
# nvidia-smi on a one-GPU node: the value of a --query-gpu field (watts, per cent) as
# --format=csv,noheader,nounits prints it; any other field or format refused.
NVIDIA_SMI = """#!/bin/sh
for a in "$@"; do case "$a" in --query-gpu=*) field=${a#--query-gpu=} ;; --format=*) format=${a#--format=} ;; esac; done
[ "$format" = csv,noheader,nounits ] || exit 2
case "$field" in power.draw) echo 71.43 ;; utilization.gpu) echo 87 ;; *) exit 2 ;; esac
"""
# Builds the Suite's own CommandExecutor from a `plugins` section (argv[1], JSON), samples every
# metric once and prints its report.
SAMPLE_PLUGINS = """
import json, sys
import importlib_resources
from hepbenchmarksuite.plugins.construction.config_builder import ConfigPluginBuilder
from hepbenchmarksuite.plugins.construction.dynamic_metadata_provider import DynamicPluginMetadataProvider
with importlib_resources.as_file(importlib_resources.files("hepbenchmarksuite.plugins.registry")) as registry:
    (plugin,) = ConfigPluginBuilder(json.loads(sys.argv[1]), DynamicPluginMetadataProvider(registry)).build()
plugin.on_start()
plugin.execute(list(plugin.metrics.values()))
print(json.dumps(plugin.on_end()))
"""


def stand_in(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(script)
    path.chmod(0o755)
    return folder


def test_bmkrun_yaml_names_the_suite_and_the_hep_score_it_pins(suite_bin):
    assert read_header(BMKRUN).clients == (SUITE,)
    r = subprocess.run([suite_bin / "bmkrun", "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == SUITE.split()[1]
    # Another version makes the Suite reinstall hep-score from gitlab.cern.ch: the one installed must match.
    assert yaml.safe_load(BMKRUN.read_text())["hepscore"]["version"] == f"v{HEPSCORE_1_5.version}"


@pytest.mark.parametrize("mode", read_header(BMKRUN).modes)
def test_bmkrun_runs_the_shipped_configuration(mode, suite_bin, tmp_path):
    conf = yaml.safe_load(BMKRUN.read_text())
    conf["global"]["rundir"] = str(tmp_path / "rundir")  # the only change
    (tmp_path / "bmkrun.yaml").write_text(yaml.safe_dump(conf))
    engine = stand_in(tmp_path / "bin", mode, FAKE_ENGINE)
    log = tmp_path / "engine.log"
    env = {
        **os.environ,
        "PATH": f"{engine}:{suite_bin}:{os.environ['PATH']}",
        "FAKE_ENGINE_LOG": str(log),
        "FAKE_TRAIN": str(FAKE_TRAIN),
    }
    r = subprocess.run(
        [suite_bin / "bmkrun", "-m", mode, "-c", tmp_path / "bmkrun.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    (report_path,) = (tmp_path / "rundir").glob("run_*/bmkrun_report.json")
    report = json.loads(report_path.read_text())

    # The hep-score configuration bmkrun.yaml names, read from the repository root.
    bench_conf = yaml.safe_load((ROOT / conf["hepscore"]["config"]).read_text())["hepscore_benchmark"]
    settings, bench = bench_conf["settings"], bench_conf["benchmarks"]["mlpf-bmk"]
    hepscore = report["profiles"]["hepscore"]
    assert hepscore["status"] == "success", r.stdout[-4000:]
    assert hepscore["settings"]["container_exec"] == mode  # -m reached hep-score
    # hep-score's score: the median over the repetitions of round(train / ref, 4), times scaling.
    ref = bench["ref_scores"]["train"]
    median = statistics.median(round(FAKE_TRAIN * (i + 1) / ref, 4) for i in range(settings["repetitions"]))
    assert hepscore["score"] == round(median * settings["scaling"], 4) > 0

    # One container per repetition, of the configured image with the configured arguments.
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == settings["repetitions"]
    registry = settings["registry"].removeprefix("docker://") if mode == "docker" else settings["registry"]
    for argv in runs:
        assert argv[argv.index("-W") - 1] == f"{registry}/mlpf-bmk:{bench['version']}"
        assert argv[argv.index("-W") :] == hepscore_argv(bench["args"])

    # Every metric sampled in each stage (NaN, a failed command or regex, becomes null in the report).
    for stage in ("pre", "hepscore", "post"):
        sampled = report["plugins"]["CommandExecutor"][stage]
        for metric in conf["plugins"]["CommandExecutor"]["metrics"]:
            values = sampled[metric]["values"]
            assert values and all(isinstance(v, float) and math.isfinite(v) for v in values), (stage, metric, values)


def commented_gpu_metrics() -> dict:
    """The metrics that bmkrun.yaml's plugins section holds commented out, for a GPU node to uncomment."""
    lines = BMKRUN.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "uncomment:" in line) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("      # "):
            break
        block.append(line.replace("# ", "", 1))
    return yaml.safe_load("\n".join(block))


def test_the_gpu_metrics_to_uncomment_work_in_the_suites_own_plugin(suite_bin, tmp_path):
    metrics = commented_gpu_metrics()
    assert set(metrics) == {"gpu-power", "gpu-utilisation"}
    env = {**os.environ, "PATH": f"{stand_in(tmp_path / 'bin', 'nvidia-smi', NVIDIA_SMI)}:{os.environ['PATH']}"}
    plugins = {"CommandExecutor": {"metrics": metrics}}
    r = subprocess.run(
        [suite_bin / "python", "-c", SAMPLE_PLUGINS, json.dumps(plugins)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.splitlines()[-1])
    assert report["gpu-power"]["values"] == [71.43] and report["gpu-power"]["config"]["unit"] == "W"
    assert report["gpu-utilisation"]["values"] == [87.0]
