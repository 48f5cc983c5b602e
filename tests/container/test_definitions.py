"""The image definitions agree: Dockerfile and Singularity.def run the same install script with the
same phases, files and settings. (The HEPscore configurations: test_hepscore_configs.py.)"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DEFINITION = (ROOT / "Singularity.def").read_text()


def install_phases(text: str) -> list[str]:
    phases = []
    for match in re.finditer(r"install\.sh ([a-z\- ]+)", text):
        phases += match.group(1).split()
    return phases


def sections(text: str) -> dict[str, list[str]]:
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("%"):
            name = line[1:].strip()
            out[name] = []
        elif name and line.strip() and not line.lstrip().startswith("#"):
            out[name].append(line.strip())
    return out


def test_both_definitions_run_the_same_install_phases_in_the_same_order():
    docker, definition = install_phases(DOCKERFILE), install_phases(DEFINITION)
    build = ["python", "horovod", "data"]
    assert [p for p in docker if p in build] == build == [p for p in definition if p in build]
    assert docker[0] == definition[0] == "system-build" and "verify" in docker and "verify" in definition
    # No compilers in the final image: the Dockerfile's last stage installs runtime packages only,
    # the single-stage definition strips the build packages.
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert install_phases(final_stage) == ["system-runtime", "verify"]
    assert definition.index("strip") > definition.index("data")


def test_both_definitions_copy_the_same_files():
    copied = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied |= set(shlex.split(line)[1:-1])
    files = {line.split()[0] for line in sections(DEFINITION)["files"]}
    assert copied == files == {"container/install.sh", "pyproject.toml", "README.md", "results_schema", "hepbench",
                               "entrypoint.sh"}


def test_both_definitions_have_the_same_default_settings_base_and_entry_point():
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE, re.M))
    # Singularity.def uses install.sh's defaults; the Dockerfile's build arguments must equal them.
    install = (ROOT / "container" / "install.sh").read_text()
    defaults = dict(re.findall(r"^\w+=\$\{HEPBENCH_(\w+):-([^}]+)\}", install, re.M))
    for name in ("FLAVOUR", "BACKENDS", "DATA_SOURCE", "TRAIN_EVENTS", "TEST_EVENTS", "SEED"):
        assert args[name] == defaults[name], name
    assert not re.search(r"HEPBENCH_\w+=", " ".join(sections(DEFINITION)["post"]))
    assert args["BASE_IMAGE"] == "debian:bookworm-slim" and "From: debian:bookworm-slim" in DEFINITION
    assert 'ENTRYPOINT ["/entrypoint.sh"]' in DOCKERFILE
    assert sections(DEFINITION)["runscript"] == ['exec /entrypoint.sh "$@"']
    assert re.search(r"^USER 1000:1000$", DOCKERFILE, re.M)


@pytest.mark.parametrize("env, message", [
    ({"HEPBENCH_FLAVOUR": "tpu"}, "HEPBENCH_FLAVOUR must be cpu or gpu"),
    ({"HEPBENCH_DATA_SOURCE": "cern"}, "HEPBENCH_DATA_SOURCE must be synthetic or zenodo"),
    ({"HEPBENCH_BACKENDS": "tensorflow,mxnet"}, "HEPBENCH_BACKENDS: 'mxnet' is not one of tensorflow, jax, torch"),
    ({"HEPBENCH_BACKENDS": ","}, "HEPBENCH_BACKENDS must name at least one"),
    ({}, "unknown phase 'everything'"),
])
def test_install_script_refuses_bad_settings_before_doing_anything(env, message):
    r = subprocess.run(["sh", str(ROOT / "container" / "install.sh"), "everything"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", **env})
    assert r.returncode == 2 and message in r.stderr


FAKE_PYTHON = """#!/bin/sh
# `python3 -m venv DIR`: a venv whose pip records its arguments
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "$*" >> "%s/pip.log"\\n' "$3" > "$3/bin/pip"
chmod +x "$3/bin/pip"
"""


@pytest.mark.parametrize("env, pip_install", [
    # The default: the same install as before BACKENDS existed.
    ({}, "install --quiet /src[cpu,qsvr,hpo]"),
    ({"HEPBENCH_FLAVOUR": "gpu"}, "install --quiet /src[gpu,qsvr,hpo]"),
    ({"HEPBENCH_BACKENDS": "tensorflow,jax,torch"},
     "install --quiet --extra-index-url https://download.pytorch.org/whl/cpu /src[cpu,jax,torch,qsvr,hpo]"),
    ({"HEPBENCH_FLAVOUR": "gpu", "HEPBENCH_BACKENDS": "tensorflow,jax,torch"},
     "install --quiet /src[gpu,jax-gpu,torch,qsvr,hpo]"),  # PyPI's torch: its CUDA build
    ({"HEPBENCH_FLAVOUR": "gpu", "HEPBENCH_BACKENDS": "torch", "HEPBENCH_TORCH_INDEX": "https://example.org/cu128"},
     "install --quiet --extra-index-url https://example.org/cu128 /src[torch,qsvr,hpo]"),
    ({"HEPBENCH_BACKENDS": "jax"}, "install --quiet /src[jax,qsvr,hpo]"),
])
def test_the_python_phase_installs_the_extras_of_the_flavour_and_backends_in_one_pip_run(env, pip_install, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    (bin_dir / "python3").chmod(0o755)
    venv = tmp_path / "venv"
    r = subprocess.run(["sh", str(ROOT / "container" / "install.sh"), "python"], capture_output=True, text=True,
                       env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HEPBENCH_VENV": str(venv), "HEPBENCH_SRC": "/src",
                            "HEPBENCH_PIP_CACHE": str(tmp_path / "cache"), **env})
    assert r.returncode == 0, r.stderr
    assert (venv / "pip.log").read_text().splitlines() == ["install --quiet --upgrade pip", pip_install]
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = pip_install.rsplit("[", 1)[1].rstrip("]").split(",")
    assert all(re.search(rf"^{e} = \[", pyproject, re.M) for e in extras)


# A venv for the horovod phase of the gpu flavour: python answers install.sh's two questions (where
# site-packages is, which CUDA 13 runtime is installed); pip records its arguments, lays out what
# `--target` would (the wheels' nvidia/cu13/lib) and, for `pip wheel`, the build's settings, then
# stops the phase there (the compile itself is the image build's).
FAKE_VENV_PYTHON = """#!/bin/sh
case "$2" in
  *sysconfig*) echo "{site}" ;;
  *nvidia-cuda-runtime*) {runtime} ;;
  *) echo "horovod-test-key" ;;
esac
"""
FAKE_VENV_PIP = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  install) [ "$3" = --target ] && mkdir -p "$4/nvidia/cu13/lib" && touch "$4/nvidia/cu13/lib/libcudart.so.13" ;;
  wheel) env | grep -E '^(HOROVOD_|LDFLAGS)' | sort >> "{log}"; exit 3 ;;
esac
"""


def horovod_gpu_phase(tmp_path, runtime: str | None, nccl: bool):
    venv, site = tmp_path / "venv", tmp_path / "site"
    (venv / "bin").mkdir(parents=True)
    answer = f"echo {runtime}" if runtime else "exit 1"
    (venv / "bin" / "python").write_text(FAKE_VENV_PYTHON.format(site=site, runtime=answer))
    (venv / "bin" / "pip").write_text(FAKE_VENV_PIP.format(log=tmp_path / "pip.log"))
    for exe in ("python", "pip"):
        (venv / "bin" / exe).chmod(0o755)
    if nccl:
        (site / "nvidia" / "nccl" / "include").mkdir(parents=True)
        (site / "nvidia" / "nccl" / "include" / "nccl.h").touch()
        (site / "nvidia" / "nccl" / "lib").mkdir()
        (site / "nvidia" / "nccl" / "lib" / "libnccl.so.2").touch()
    r = subprocess.run(["sh", str(ROOT / "container" / "install.sh"), "horovod"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HEPBENCH_VENV": str(venv), "HEPBENCH_FLAVOUR": "gpu",
                            "HEPBENCH_PIP_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)})
    log = (tmp_path / "pip.log").read_text().splitlines() if (tmp_path / "pip.log").exists() else []
    return r, log


@pytest.mark.parametrize("runtime, series", [("13.0.96", "13.0"), (None, "13.0")])
def test_the_gpu_horovod_build_gets_one_consistent_cuda_toolkit_and_the_venv_s_nccl(tmp_path, runtime, series):
    r, log = horovod_gpu_phase(tmp_path, runtime, nccl=True)
    assert r.returncode == 3, r.stderr  # the fake `pip wheel`: the phase reached Horovod's build
    toolkit = next(line for line in log if "--target" in line).split()
    assert [w for w in toolkit if w.startswith("nvidia-")] == [
        f"nvidia-cuda-nvcc=={series}.*", f"nvidia-cuda-crt=={series}.*", f"nvidia-nvvm=={series}.*",
        f"nvidia-cuda-cccl=={series}.*", f"nvidia-cuda-runtime=={runtime or series + '.*'}"]
    settings = dict(line.split("=", 1) for line in log if line.startswith(("HOROVOD_", "LDFLAGS")))
    assert settings["HOROVOD_GPU_OPERATIONS"] == "NCCL" and settings["HOROVOD_NCCL_LINK"] == "SHARED"
    assert settings["LDFLAGS"] == "-Wl,-rpath,$ORIGIN/../../nvidia/nccl/lib"  # relative: the wheel loads anywhere
    cuda, nccl = Path(settings["HOROVOD_CUDA_HOME"]), Path(settings["HOROVOD_NCCL_HOME"])
    assert cuda.name == "cu13" and str(cuda).startswith(str(tmp_path))  # a scratch folder, not the venv
    assert settings["HOROVOD_BUILD_CUDA_CC_LIST"] == "75,80,90,100,110,120"
    assert (tmp_path / "site" / "nvidia" / "nccl" / "lib" / "libnccl.so.2").is_file()  # the venv's NCCL untouched
    assert not (tmp_path / "site" / "nvidia" / "nccl" / "lib" / "libnccl.so").exists()
    assert "nccl" in str(nccl)


def test_the_gpu_horovod_build_without_nccl_in_the_venv_stops_with_a_clear_error(tmp_path):
    r, log = horovod_gpu_phase(tmp_path, "13.0.96", nccl=False)
    assert r.returncode == 1 and "no NCCL in the venv" in r.stderr and log == []
