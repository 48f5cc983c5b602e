"""The shipped HEPscore configurations (hepscore/mlpf-bmk*.yaml in hep-score 1.5's form, the
release the HEP Benchmark Suite 3.1 pins; hepscore/v2/mlpf-bmk*.yaml in hep-score 2's) load in the
real clients their headers name, in the modes they name, and in no other (tests/container/clients.py).

The clients are read from $HEPBENCH_SHARED/clients (default: the `shared` folder beside the
repository); tests that need them skip where they are absent, and fail under CI=true
(tests/shared_folder.py). No container runs here: HEPscore's own replay mode (`hep-score -r`)
scores summaries written in advance, which exercises validation, the registry each mode takes, the
image reference, the argument string and the score; the arguments go to entrypoint.sh with
conftest.py's stand-in `hepbench`. bmkrun.yaml: test_bmkrun.py. Running the real image under the
clients is the image tests' job.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import platform
import re
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from tests.container.clients import (
    DEPRECATED_KEY,
    HEPSCORE_1_5,
    HEPSCORE_2,
    HEPSCORE_DIR,
    HEPSCORES,
    MODES,
    SUITE,
    HepScore,
    hepscore_argv,
    read_header,
)

CONFIGS = sorted(str(p.relative_to(HEPSCORE_DIR)) for p in HEPSCORE_DIR.rglob("mlpf-bmk*.yaml"))
V2 = [name for name in CONFIGS if name.startswith("v2/")]
HEPSCORE_CHARS = re.compile(r"^[a-zA-Z0-9\-_]*$")  # hep-score's check on names and argument values
# The registry scheme each engine takes, in the order hep-score 2 prefers them (hepscore.py's valid_curis).
SCHEMES = {"docker": ("docker",), "singularity": ("oras", "docker", "shub", "dir", "https")}
CASES = [
    (name, client, mode)
    for name in CONFIGS
    for client in read_header(HEPSCORE_DIR / name).clients
    for mode in read_header(HEPSCORE_DIR / name).modes
]


def load(name: str) -> dict:
    return yaml.safe_load((HEPSCORE_DIR / name).read_text())


def top_key(config: dict) -> str:
    (key,) = config
    return key


def _take_hepscore_modules() -> dict:
    return {
        name: sys.modules.pop(name) for name in list(sys.modules) if name == "hepscore" or name.startswith("hepscore.")
    }


def import_client(client: HepScore):
    """The release's `hepscore.hepscore` module, imported from its unmodified source. The package
    leaves sys.modules afterwards, so that the other release can be imported beside it (each module
    keeps what it imported)."""
    source = client.source()
    saved = _take_hepscore_modules()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PBR_VERSION", client.version)
            mp.syspath_prepend(str(source))
            module = importlib.import_module("hepscore.hepscore")
    finally:
        _take_hepscore_modules()
        sys.modules.update(saved)
    assert Path(module.__file__).resolve().is_relative_to(source.resolve())
    return module


@pytest.fixture(scope="module")
def client():
    """client(name): the `hepscore.hepscore` module of HEPSCORES[name], imported once."""
    loaded = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = import_client(HEPSCORES[name])
        return loaded[name]

    return get


def construct(module, config: dict, resultsdir: Path):
    """HEPscore(config, resultsdir) as main.py constructs it; __init__ runs validate_conf and
    resolves the registry for the container engine. Its `results` and `weights` are class-level
    lists (one run per process there), so each instance gets its own."""
    resultsdir.mkdir(parents=True, exist_ok=True)
    hs = module.HEPscore(copy.deepcopy(config), str(resultsdir))
    hs.results, hs.weights = [], []
    return hs


def in_mode(config: dict, mode: str) -> dict:
    """The configuration as `-m MODE` (or the Suite's mode) hands it over: container_exec set."""
    config = copy.deepcopy(config)
    config[top_key(config)]["settings"]["container_exec"] = mode
    return config


def accepts(module, config: dict, mode: str, resultsdir: Path, caplog) -> bool:
    """Whether the client takes the file in that mode as its own: constructed without stopping,
    and without a deprecation warning."""
    caplog.clear()
    try:
        construct(module, in_mode(config, mode), resultsdir)
    except (SystemExit, KeyError):  # hep-score stops with sys.exit; 1.5 has no fallback for a missing key
        return False
    return DEPRECATED_KEY not in caplog.text


def refused(module, config: dict, resultsdir: Path, caplog) -> str:
    """Construct and expect hep-score to stop (it calls sys.exit); return what it logged."""
    caplog.clear()
    with pytest.raises(SystemExit) as stop:
        construct(module, config, resultsdir)
    assert stop.value.code == 1
    return caplog.text


def test_every_file_in_hepscore_has_a_header_that_a_test_here_or_in_test_bmkrun_follows():
    files = sorted(str(p.relative_to(HEPSCORE_DIR)) for p in HEPSCORE_DIR.rglob("*") if p.is_file())
    assert files == sorted([*CONFIGS, "bmkrun.yaml"])  # no file that neither module validates
    for name in CONFIGS:
        assert set(read_header(HEPSCORE_DIR / name).clients) <= set(HEPSCORES), name
    assert read_header(HEPSCORE_DIR / "bmkrun.yaml").clients == (SUITE,)


@pytest.mark.parametrize("name", CONFIGS)
def test_each_header_names_exactly_the_clients_and_modes_that_take_the_file(name, client, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="hepscore.hepscore")
    config, header = load(name), read_header(HEPSCORE_DIR / name)
    taken = {
        (c, mode)
        for c in HEPSCORES
        for mode in MODES
        if accepts(client(c), config, mode, tmp_path / f"{c}-{mode}".replace(" ", "_"), caplog)
    }
    assert taken == {(c, mode) for c in header.clients for mode in header.modes}


@pytest.mark.parametrize("name", CONFIGS)
def test_each_configuration_has_the_layout_of_its_clients(name):
    config, header = load(name), read_header(HEPSCORE_DIR / name)
    settings = config[top_key(config)]["settings"]
    if HEPSCORE_1_5.name in header.clients:
        # 1.5 reads only this key, and one registry string.
        assert top_key(config) == "hepscore_benchmark" and isinstance(settings["registry"], str)
    else:
        # 2's own form: one registry per scheme, one of them for each mode.
        assert top_key(config) == "hepscore" and isinstance(settings["registry"], list)
        schemes = [r.split("://")[0] for r in settings["registry"]]
        assert len(set(schemes)) == len(schemes) and {"oras", "docker"} <= set(schemes)
    ((bench_name, bench),) = config[top_key(config)]["benchmarks"].items()
    assert bench_name == "mlpf-bmk" and bench["results_file"] == "mlpf_summary.json"
    assert set(bench["ref_scores"]) == {"train"} and all(v > 0 for v in bench["ref_scores"].values())
    assert bench["gpu"] is ("-M" in bench["args"])  # `gpu: true` exactly where the run is asked for a GPU


@pytest.mark.parametrize("name", V2)
def test_each_v2_configuration_is_the_v1_5_one_in_v2_form(name):
    v2, v15 = load(name)["hepscore"], load(Path(name).name)["hepscore_benchmark"]
    assert v2["benchmarks"] == v15["benchmarks"]  # the same reference scores, image version and arguments
    docker = load("mlpf-bmk-docker.yaml")["hepscore_benchmark"]["settings"]["registry"]
    assert sorted(v2["settings"]["registry"]) == sorted({v15["settings"]["registry"], docker})
    assert {
        k for k in v2["settings"].keys() | v15["settings"].keys() if v2["settings"].get(k) != v15["settings"].get(k)
    } == {"registry"}


@pytest.mark.parametrize("form", ["", "v2/"])
def test_each_backend_has_a_cpu_configuration_that_names_it(form):
    for backend in ("jax", "torch"):
        config = load(f"{form}mlpf-bmk-{backend}.yaml")
        bench = config[top_key(config)]["benchmarks"]["mlpf-bmk"]
        assert bench["args"]["backend"] == backend and bench["gpu"] is False
    config = load(f"{form}mlpf-bmk.yaml")
    assert "backend" not in config[top_key(config)]["benchmarks"]["mlpf-bmk"]["args"]  # the reference: TensorFlow


def test_the_docker_registry_configuration_is_the_reference_benchmark_from_another_registry():
    sif, docker = load("mlpf-bmk.yaml")["hepscore_benchmark"], load("mlpf-bmk-docker.yaml")["hepscore_benchmark"]
    assert docker["benchmarks"] == sif["benchmarks"]
    differ = {
        k
        for k in sif["settings"].keys() | docker["settings"].keys()
        if sif["settings"].get(k) != docker["settings"].get(k)
    }
    assert differ == {"name", "registry", "container_exec", "addarch"}


@pytest.mark.parametrize("name", CONFIGS)
def test_the_driver_accepts_the_arguments_of_each_configuration(name, driver):
    config = load(name)
    bench = config[top_key(config)]["benchmarks"]["mlpf-bmk"]
    # hep-score drops an argument whose key or value fails its character check.
    assert all(HEPSCORE_CHARS.match(k) and HEPSCORE_CHARS.match(str(v)) for k, v in bench["args"].items())
    r = driver(*hepscore_argv(bench["args"]))
    assert r.returncode == 0, r.stderr
    if "backend" in bench["args"]:
        assert "--backend" in json.loads(r.stdout)["argv"]


@pytest.mark.parametrize("name, client_name, mode", CASES)
def test_each_named_client_scores_a_replay_of_the_file_in_each_named_mode(
    name, client_name, mode, client, tmp_path, caplog, monkeypatch
):
    module = client(client_name)
    config = in_mode(load(name), mode)
    settings, bench = config[top_key(config)]["settings"], config[top_key(config)]["benchmarks"]["mlpf-bmk"]
    caplog.set_level(logging.DEBUG, logger="hepscore.hepscore")
    hs = construct(module, config, tmp_path)
    assert hs.cec == mode and list(hs.confobj["benchmarks"]) == ["mlpf-bmk"]
    assert DEPRECATED_KEY not in caplog.text

    # Summaries as the container writes them, one per repetition: train = ref x 1, 2, 3, ...
    ref = bench["ref_scores"]["train"]
    for i in range(settings["repetitions"]):
        run = tmp_path / "mlpf-bmk" / f"run{i}"
        run.mkdir(parents=True)
        summary = {
            "app": {"version": "test"},
            "run_info": {"copies": 1},
            "report": {"wl-scores": {"train": ref * (i + 1)}, "log": "ok"},
        }
        (run / "mlpf_summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(hs, "get_version", lambda: ["engine", "0.0"])  # no engine is asked
    monkeypatch.setattr(module.time, "sleep", lambda s: None)  # replay waits 1 s per run
    assert hs.run(mock=True) == 0
    hs.gen_score()
    # Median of the per-run scores round(train / ref, 4) = 1, 2, 3 ..., times scaling.
    median = statistics.median(range(1, settings["repetitions"] + 1))
    assert hs.confobj["status"] == "success" and hs.confobj["score"] == median * settings["scaling"]

    # The command it would run: the image a site must push, then the workload's arguments.
    registries = [settings["registry"]] if isinstance(settings["registry"], str) else settings["registry"]
    registry = next(r for scheme in SCHEMES[mode] for r in registries if r.startswith(f"{scheme}://"))
    command = next(r.args[0] for r in caplog.records if r.msg.startswith("Running"))
    # With addarch, singularity mode and a registry other than docker://: VERSION_<arch>.
    arch = settings["addarch"] and mode == "singularity" and not registry.startswith("docker://")
    tag = bench["version"] + (f"_{platform.machine()}" if arch else "")
    image = f"{registry.removeprefix('docker://') if mode == 'docker' else registry}/mlpf-bmk:{tag}"
    assert image in command
    assert command[command.index(image) + 1 :] == hepscore_argv(bench["args"])
    if bench["gpu"]:
        assert ("--nv" if mode == "singularity" else "--gpus") in command


def test_hepscore_2_passes_a_core_count_on_to_the_driver(client, tmp_path, caplog, monkeypatch, driver):
    """hep-score 2's `-n N` (or `settings.ncores`, which the Suite sets from its own `ncores`)
    reaches the workload as `--ncores N` when N is not the number of usable cores."""
    if len(os.sched_getaffinity(0)) == 1:
        pytest.skip("one usable core: hep-score 2 passes no --ncores 1 there")
    module = client(HEPSCORE_2.name)
    config = load("v2/mlpf-bmk.yaml")
    config["hepscore"]["options"] = {"ncores": 1}  # what main.py makes of `-n 1`
    hs = construct(module, in_mode(config, "docker"), tmp_path)
    caplog.set_level(logging.DEBUG, logger="hepscore.hepscore")
    monkeypatch.setattr(hs, "get_version", lambda: ["engine", "0.0"])
    monkeypatch.setattr(module.time, "sleep", lambda s: None)
    hs.run(mock=True)  # no summaries: only the command matters here
    command = next(r.args[0] for r in caplog.records if r.msg.startswith("Running"))
    workload = command[command.index("-W") :]
    assert workload[:3] == ["-W", "--ncores", "1"]
    r = driver(*workload)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["argv"][-2:] == ["--ncores", "1"]


def registry_list(config):
    """A list of registries (hep-score 2's form): 1.5 checks the value as one string."""
    config["hepscore_benchmark"]["settings"]["registry"] = [config["hepscore_benchmark"]["settings"]["registry"]]
    return config


def sif_with_docker(config):
    """The oras:// (SIF) registry with the docker engine."""
    config["hepscore_benchmark"]["settings"]["container_exec"] = "docker"
    return config


@pytest.mark.parametrize(
    "broken, message",
    [
        (registry_list, "illegal character in registry"),
        (sif_with_docker, "Only docker registry URI"),
    ],
)
def test_hepscore_1_5_refuses_a_broken_copy(client, tmp_path, caplog, broken, message):
    config = broken(load("mlpf-bmk.yaml"))
    assert message in refused(client(HEPSCORE_1_5.name), config, tmp_path, caplog)


def test_hepscore_1_5_stops_on_the_v2_form(client, tmp_path):
    """What the HEP Benchmark Suite 3.1 reported for a v2 file as "Benchmark hepscore crashed:
    'hepscore_benchmark'": why hepscore/bmkrun.yaml names a 1.5 file."""
    with pytest.raises(KeyError, match="hepscore_benchmark"):
        construct(client(HEPSCORE_1_5.name), load("v2/mlpf-bmk.yaml"), tmp_path)
