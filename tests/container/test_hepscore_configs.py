"""The shipped HEPscore configurations (hepscore/mlpf-bmk*.yaml) and the HEP Benchmark Suite
configuration (hepscore/bmkrun.yaml) load in the real hep-score v1.5, the client the suite pins.

The client is read from $HEPBENCH_SHARED/clients/hep-score-1.5 (default: the `shared` folder beside
the repository); tests that need it skip where it is absent, and fail under CI=true
(tests/shared_folder.py). No container runs here: HEPscore's
own replay mode (`hep-score -r`) scores summaries written in advance, which exercises validation,
the image reference, the argument string and the score; the arguments go to entrypoint.sh with
conftest.py's stand-in `hepbench`. Running the real image under HEPscore is the image test's job.
"""
from __future__ import annotations

import copy
import importlib
import json
import logging
import platform
import re
import statistics
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.shared_folder import SHARED, need_shared

ROOT = Path(__file__).resolve().parents[2]
CLIENT = SHARED / "clients" / "hep-score-1.5"
CONFIGS = sorted(p.name for p in (ROOT / "hepscore").glob("mlpf-bmk*.yaml"))
HEPSCORE_CHARS = re.compile(r"^[a-zA-Z0-9\-_]*$")  # hep-score's check on names and argument values
KEY = "hepscore_benchmark"  # v1.5 reads only this top key; v2.0 reads it too (with a warning)


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "hepscore" / name).read_text())


def hepscore_argv(args: dict) -> list[str]:
    """The workload arguments hep-score v1.5 builds from a benchmark's `args`: always -W, then
    `--key value` (a key starting with '-' as it is; true alone; None/false dropped)."""
    argv = ["-W"]
    for key, value in args.items():
        if str(value) in ("None", "False"):
            continue
        argv.append(key if key.startswith("-") else f"--{key}")
        if str(value) != "True":
            argv.append(str(value))
    return argv


@pytest.fixture(scope="module")
def hepscore():
    """hep-score v1.5's `hepscore.hepscore` module, imported from its unmodified source.

    Its package __init__ only reads its own version, through pbr (the test extra), which finds
    none in a source tree: pbr takes it from PBR_VERSION, set from the ChangeLog's top entry."""
    need_shared(CLIENT / "hepscore" / "hepscore.py", "hep-score 1.5")
    version = (CLIENT / "ChangeLog").read_text().split()[0].lstrip("v")
    assert version.split(".")[:2] == ["1", "5"], f"{CLIENT} holds hep-score {version}, not 1.5"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PBR_VERSION", version)
        mp.syspath_prepend(str(CLIENT))
        module = importlib.import_module("hepscore.hepscore")
    assert Path(module.__file__).resolve().is_relative_to(CLIENT.resolve())
    return module


def construct(hepscore, config: dict, resultsdir: Path):
    """HEPscore(config, resultsdir) as main.py constructs it; __init__ runs validate_conf and
    resolves the registry for the container engine. Its `results` and `weights` are class-level
    lists in v1.5 (one run per process there), so each instance gets its own."""
    resultsdir.mkdir(parents=True, exist_ok=True)
    hs = hepscore.HEPscore(copy.deepcopy(config), str(resultsdir))
    hs.results, hs.weights = [], []
    return hs


def refused(hepscore, config: dict, resultsdir: Path, caplog) -> str:
    """Construct and expect hep-score to stop (it calls sys.exit); return what it logged."""
    caplog.clear()
    with pytest.raises(SystemExit) as stop:
        construct(hepscore, config, resultsdir)
    assert stop.value.code == 1
    return caplog.text


@pytest.mark.parametrize("name", CONFIGS)
def test_each_configuration_has_the_layout_hep_score_1_5_and_2_0_read(name):
    config = load(name)
    assert list(config) == [KEY]
    settings = config[KEY]["settings"]
    assert isinstance(settings["registry"], str)  # v1.5: one string (a list is v2.0's)
    # hep-score's docker mode takes only docker:// registries.
    assert settings["container_exec"] == ("docker" if settings["registry"].startswith("docker://") else "singularity")
    (bench_name, bench), = config[KEY]["benchmarks"].items()
    assert bench_name == "mlpf-bmk" and bench["results_file"] == "mlpf_summary.json"
    assert set(bench["ref_scores"]) == {"train"} and all(v > 0 for v in bench["ref_scores"].values())


def test_each_backend_has_a_cpu_configuration_that_names_it():
    for backend in ("jax", "torch"):
        bench = load(f"mlpf-bmk-{backend}.yaml")[KEY]["benchmarks"]["mlpf-bmk"]
        assert bench["args"]["backend"] == backend and bench["gpu"] is False
    reference = load("mlpf-bmk.yaml")[KEY]["benchmarks"]["mlpf-bmk"]
    assert "backend" not in reference["args"]  # the reference run: hepbench's default, TensorFlow


def test_the_docker_registry_configuration_is_the_reference_benchmark_from_another_registry():
    sif, docker = load("mlpf-bmk.yaml")[KEY], load("mlpf-bmk-docker.yaml")[KEY]
    assert docker["benchmarks"] == sif["benchmarks"]
    differ = {k for k in sif["settings"].keys() | docker["settings"].keys()
              if sif["settings"].get(k) != docker["settings"].get(k)}
    assert differ == {"name", "registry", "container_exec", "addarch"}


@pytest.mark.parametrize("name", CONFIGS)
def test_the_driver_accepts_the_arguments_of_each_configuration(name, driver):
    bench = load(name)[KEY]["benchmarks"]["mlpf-bmk"]
    # hep-score drops an argument whose key or value fails its character check.
    assert all(HEPSCORE_CHARS.match(k) and HEPSCORE_CHARS.match(str(v)) for k, v in bench["args"].items())
    r = driver(*hepscore_argv(bench["args"]))
    assert r.returncode == 0, r.stderr
    if "backend" in bench["args"]:
        assert "--backend" in json.loads(r.stdout)["argv"]


@pytest.mark.parametrize("name", CONFIGS)
def test_hepscore_1_5_validates_each_configuration_and_scores_a_replay(name, hepscore, tmp_path, caplog,
                                                                       monkeypatch):
    config = load(name)
    settings, bench = config[KEY]["settings"], config[KEY]["benchmarks"]["mlpf-bmk"]
    hs = construct(hepscore, config, tmp_path)
    assert hs.cec == settings["container_exec"] and list(hs.confobj["benchmarks"]) == ["mlpf-bmk"]

    # Summaries as the container writes them, one per repetition: train = ref x 1, 2, 3, ...
    ref = bench["ref_scores"]["train"]
    for i in range(settings["repetitions"]):
        run = tmp_path / "mlpf-bmk" / f"run{i}"
        run.mkdir(parents=True)
        summary = {"app": {"version": "test"}, "run_info": {"copies": 1},
                   "report": {"wl-scores": {"train": ref * (i + 1)}, "log": "ok"}}
        (run / "mlpf_summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(hs, "get_version", lambda: ["engine", "0.0"])  # no engine is asked
    monkeypatch.setattr(hepscore.time, "sleep", lambda s: None)        # replay waits 1 s per run
    caplog.set_level(logging.DEBUG, logger=hepscore.__name__)
    assert hs.run(mock=True) == 0
    hs.gen_score()
    # Median of the per-run scores round(train / ref, 4) = 1, 2, 3 ..., times scaling.
    median = statistics.median(range(1, settings["repetitions"] + 1))
    assert hs.confobj["status"] == "success" and hs.confobj["score"] == median * settings["scaling"]

    # The command it would run: the image a site must push, then the workload's arguments.
    command = next(r.args[0] for r in caplog.records if r.msg.startswith("Running"))
    registry, docker = settings["registry"], settings["container_exec"] == "docker"
    # With addarch, singularity mode and a registry other than docker://: VERSION_<arch>.
    arch = settings["addarch"] and not docker and not registry.startswith("docker://")
    tag = bench["version"] + (f"_{platform.machine()}" if arch else "")
    image = f"{registry.removeprefix('docker://') if docker else registry}/mlpf-bmk:{tag}"
    assert image in command
    assert command[command.index(image) + 1:] == hepscore_argv(bench["args"])
    if bench["gpu"]:
        assert ("--nv" if hs.cec == "singularity" else "--gpus") in command


def v2_top_key(config):
    """v2.0's layout, which v1.5 cannot read: what the HEP Benchmark Suite reported as
    "Benchmark hepscore crashed: 'hepscore_benchmark'"."""
    return {"hepscore": config[KEY]}


def registry_list(config):
    """A list of registries (v2.0's form): v1.5 checks the value as one string."""
    config[KEY]["settings"]["registry"] = [config[KEY]["settings"]["registry"]]
    return config


def sif_with_docker(config):
    """The oras:// (SIF) registry with the docker engine."""
    config[KEY]["settings"]["container_exec"] = "docker"
    return config


@pytest.mark.parametrize("broken, message", [
    (v2_top_key, None),
    (registry_list, "illegal character in registry"),
    (sif_with_docker, "Only docker registry URI"),
])
def test_hepscore_1_5_refuses_a_broken_copy(hepscore, tmp_path, caplog, broken, message):
    config = broken(load("mlpf-bmk.yaml"))
    if message is None:
        with pytest.raises(KeyError, match=KEY):
            construct(hepscore, config, tmp_path)
    else:
        assert message in refused(hepscore, config, tmp_path, caplog)


def test_bmkrun_configuration_has_what_the_suite_reads():
    suite = yaml.safe_load((ROOT / "hepscore" / "bmkrun.yaml").read_text())
    glob = suite["global"]
    assert glob["benchmarks"] == ["hepscore"] and glob["mode"] in ("singularity", "docker")
    assert Path(glob["rundir"]).is_absolute() and glob["publish"] is False and glob["tags"]["site"]
    assert suite["hepscore"]["version"] in ("v1.5", "v2.0")
    assert (ROOT / suite["hepscore"]["config"]).is_file()  # relative to the repository root
    # Each plugin metric's regex finds a number (its `value` group) in its command's output here.
    for metric, spec in suite["plugins"]["CommandExecutor"]["metrics"].items():
        out = subprocess.run(spec["command"], shell=True, capture_output=True, text=True, check=True).stdout
        assert float(re.search(spec["regex"], out).group("value")) >= 0, metric
        assert spec["interval_mins"] > 0


@pytest.mark.parametrize("mode", ["docker", "singularity"])
def test_bmkrun_hands_hepscore_a_configuration_it_runs_in_either_mode(mode, hepscore, tmp_path, caplog):
    suite = yaml.safe_load((ROOT / "hepscore" / "bmkrun.yaml").read_text())
    # What the suite does with `-m MODE` before it constructs HEPscore: the hep-score
    # configuration's container_exec becomes the mode.
    config = yaml.safe_load((ROOT / suite["hepscore"]["config"]).read_text())
    config[KEY]["settings"]["container_exec"] = mode
    assert construct(hepscore, config, tmp_path).cec == mode
    # The SIF configuration would not do for `-m docker`: why bmkrun.yaml points at the other.
    sif = load("mlpf-bmk.yaml")
    sif[KEY]["settings"]["container_exec"] = mode
    if mode == "docker":
        assert "Only docker registry URI" in refused(hepscore, sif, tmp_path, caplog)
    else:
        construct(hepscore, sif, tmp_path)
