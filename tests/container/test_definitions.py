"""The image definitions agree: Dockerfile and Singularity.def run the same install script with the
same phases, files and settings. (The HEPscore configurations: test_hepscore_configs.py.)"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
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
    build = ["deps", "horovod", "python", "data"]
    assert [p for p in docker if p in build] == build == [p for p in definition if p in build]
    assert docker[0] == definition[0] == "system-build" and "verify" in docker and "verify" in definition
    # No compilers in the final image: the stages the image is built on install runtime packages
    # only, the single-stage definition strips the build packages.
    assert install_phases("".join(image_chain())) == ["system-runtime", "verify"]
    assert definition.index("strip") > definition.index("data")


def stages() -> list[tuple[str, str, str]]:
    """The Dockerfile's stages in order: (name or "", what it is FROM, its text)."""
    out = []
    for part in re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]:
        head, text = part.split("\n", 1)
        words = head.split()
        out.append((words[2] if len(words) == 3 and words[1] == "AS" else "", words[0], text))
    return out


def image_chain() -> list[str]:
    """The text of the stages the image (the last one) is built on, base first."""
    named = {name: (base, text) for name, base, text in stages() if name}
    _, base, text = stages()[-1]
    chain = [text]
    while base in named:
        base, text = named[base]
        chain.insert(0, text)
    return chain


def test_the_dependency_layers_come_before_the_source_for_the_layer_cache():
    # A code change must reuse the big layers (every requirement, Horovod): the stage that installs
    # them copies nothing of the source (not even README.md, which only hepbench's own metadata reads),
    # and the data build arguments come after them.
    by_name = {name: text for name, _, text in stages()}
    assert install_phases(by_name["deps"]) == ["system-build", "deps", "horovod"]
    copied = {w for line in by_name["deps"].splitlines() if line.startswith("COPY ") for w in shlex.split(line)[1:-1]}
    assert copied == {"container/install.sh", "pyproject.toml", "container/constraints.txt"}
    assert not re.search(r"^ARG (DATA_SOURCE|TRAIN_EVENTS|TEST_EVENTS|SEED)\b", by_name["deps"], re.M)
    build = by_name["build"]
    assert build.index("COPY hepbench") < build.index("install.sh python") < build.index("ARG TRAIN_EVENTS")
    assert build.index("COPY README.md") < build.index("install.sh python")
    assert [base for name, base, _ in stages() if name == "build"] == ["deps"]
    # The image's venv is deps' own, copied before anything of the source: a code change keeps that
    # layer (2.6 GB) cached and copies only what the layer phase gathered.
    copies = [line for text in image_chain() for line in text.splitlines() if line.startswith("COPY --from")]
    assert copies == [
        "COPY --from=deps /opt/hepbench/venv /opt/hepbench/venv",
        "COPY --from=build /opt/hepbench-layer/ /",
    ]
    assert install_phases(build)[-1] == "layer"


def test_both_definitions_copy_the_same_files():
    copied = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied |= set(shlex.split(line)[1:-1])
    files = {line.split()[0] for line in sections(DEFINITION)["files"]}
    assert (
        copied
        == files
        == {
            "container/install.sh",
            "pyproject.toml",
            "container/constraints.txt",
            "README.md",
            "results_schema",
            "hepbench",
            "entrypoint.sh",
        }
    )


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


@pytest.mark.parametrize(
    "env, message",
    [
        ({"HEPBENCH_FLAVOUR": "tpu"}, "HEPBENCH_FLAVOUR must be cpu or gpu"),
        ({"HEPBENCH_DATA_SOURCE": "cern"}, "HEPBENCH_DATA_SOURCE must be synthetic or zenodo"),
        ({"HEPBENCH_BACKENDS": "tensorflow,mxnet"}, "HEPBENCH_BACKENDS: 'mxnet' is not one of tensorflow, jax, torch"),
        ({"HEPBENCH_BACKENDS": ","}, "HEPBENCH_BACKENDS must name at least one"),
        ({}, "unknown phase 'everything'"),
    ],
)
def test_install_script_refuses_bad_settings_before_doing_anything(env, message):
    r = subprocess.run(
        ["sh", str(ROOT / "container" / "install.sh"), "everything"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert r.returncode == 2 and message in r.stderr


FAKE_PYTHON = """#!/bin/sh
# `python3 -m venv DIR`: a venv whose pip records its arguments, one per line, a blank line after
# each call, and whose python is the real one without its site-packages (-S: it finds only the
# distributions a test puts on PYTHONPATH); anything else (the deps phase's reader of
# pyproject.toml) is the real Python.
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\nexec %s -S "$@"\n' "{python}" > "$3/bin/python"
  chmod +x "$3/bin/python"
  printf '#!/bin/sh\\nprintf "%%s\\\\n" "$@" "" >> "%s/pip.log"\\n' "$3" > "$3/bin/pip"
  chmod +x "$3/bin/pip"
else
  exec {python} "$@"
fi
"""


def run_phase(tmp_path, phase: str, env: dict, src: Path = ROOT):
    """install.sh PHASE with a fake venv; returns the result and pip's calls, each a list of arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python3").write_text(FAKE_PYTHON.format(python=sys.executable))
    (bin_dir / "python3").chmod(0o755)
    venv = tmp_path / "venv"
    r = subprocess.run(
        ["sh", str(ROOT / "container" / "install.sh"), phase],
        capture_output=True,
        text=True,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HEPBENCH_VENV": str(venv),
            "HEPBENCH_SRC": str(src),
            "HEPBENCH_PIP_CACHE": str(tmp_path / "cache"),
            "TMPDIR": str(tmp_path),
            **env,
        },
    )
    log = (venv / "pip.log").read_text() if (venv / "pip.log").exists() else ""
    return r, [call.split("\n") for call in log.split("\n\n") if call]


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize(
    "env, options, extras",
    [
        # The default: the same install as before BACKENDS existed.
        ({}, [], ["cpu", "qsvr", "hpo"]),
        ({"HEPBENCH_FLAVOUR": "gpu"}, [], ["gpu", "qsvr", "hpo"]),
        (
            {"HEPBENCH_BACKENDS": "tensorflow,jax,torch"},
            ["--extra-index-url", "https://download.pytorch.org/whl/cpu"],
            ["cpu", "jax", "torch", "qsvr", "hpo"],
        ),
        (
            {"HEPBENCH_FLAVOUR": "gpu", "HEPBENCH_BACKENDS": "tensorflow,jax,torch"},
            [],
            ["gpu", "jax-gpu", "torch", "qsvr", "hpo"],
        ),  # PyPI's torch: its CUDA build
        (
            {
                "HEPBENCH_FLAVOUR": "gpu",
                "HEPBENCH_BACKENDS": "torch",
                "HEPBENCH_TORCH_INDEX": "https://example.org/cu128",
            },
            ["--extra-index-url", "https://example.org/cu128"],
            ["torch", "qsvr", "hpo"],
        ),
        ({"HEPBENCH_BACKENDS": "jax"}, [], ["jax", "qsvr", "hpo"]),
    ],
)
def test_the_deps_phase_installs_the_requirements_of_the_flavour_and_backends_in_one_pip_run(
    env, options, extras, tmp_path
):
    r, calls = run_phase(tmp_path, "deps", env)
    assert r.returncode == 0, r.stderr
    assert calls[0] == ["install", "--quiet", "--upgrade", "pip"] and len(calls) == 2
    wanted = PYPROJECT["dependencies"] + [req for e in extras for req in PYPROJECT["optional-dependencies"][e]]
    # The reference's engine versions as constraints; markers kept, each requirement once.
    constraints = ["--constraint", str(ROOT / "container" / "constraints.txt")]
    assert calls[1] == ["install", "--quiet", *constraints, *options, *dict.fromkeys(wanted)]
    assert "scikit-learn>=1.4" in calls[1] and not any("hepbench" in a for a in calls[1])


def test_the_deps_phase_follows_an_extra_that_names_the_projects_own_and_refuses_an_unknown_one(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(
        '[project]\nname = "hepbench"\ndependencies = ["numpy"]\n'
        "[project.optional-dependencies]\ncpu = [\"tensorflow-cpu; os_name == 'posix'\"]\n"
        'qsvr = ["dimod", "hepbench[cpu]"]\nhpo = ["ray", "dimod"]\n'
    )
    r, calls = run_phase(tmp_path, "deps", {}, src)
    assert r.returncode == 0, r.stderr
    assert calls[1] == [
        "install",
        "--quiet",
        "--constraint",
        str(src / "container" / "constraints.txt"),
        "numpy",
        "tensorflow-cpu; os_name == 'posix'",
        "dimod",
        "ray",
    ]
    (src / "pyproject.toml").write_text(
        '[project]\nname = "hepbench"\ndependencies = []\n[project.optional-dependencies]\ncpu = []\nqsvr = []\n'
    )
    r, calls = run_phase(tmp_path / "second", "deps", {}, src)
    assert r.returncode != 0 and "has no extra 'hpo'" in r.stderr
    assert calls == [["install", "--quiet", "--upgrade", "pip"]]  # stopped before installing anything


def test_the_deps_phase_puts_the_newest_of_several_nccl_wheels_in_place(tmp_path):
    # The venv's distributions as the real Python finds them: two NCCL wheels (TensorFlow's and
    # PyTorch's share one file), then one (nothing to do).
    site = tmp_path / "site"
    for name, version in [("nvidia_nccl_cu12", "2.21.5"), ("nvidia_nccl_cu13", "2.28.9")]:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
    r, calls = run_phase(tmp_path / "two", "deps", {"HEPBENCH_FLAVOUR": "gpu", "PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr
    assert calls[2] == ["install", "--quiet", "--no-deps", "--force-reinstall", "nvidia-nccl-cu13==2.28.9"]
    assert "reinstalling the newest, nvidia-nccl-cu13==2.28.9" in r.stdout and len(calls) == 3
    shutil.rmtree(site / "nvidia_nccl_cu13-2.28.9.dist-info")
    r, calls = run_phase(tmp_path / "one", "deps", {"HEPBENCH_FLAVOUR": "gpu", "PYTHONPATH": str(site)})
    assert r.returncode == 0 and len(calls) == 2, r.stderr


def test_the_python_phase_installs_hepbench_alone_and_checks_the_set(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").write_text(FAKE_PYTHON.format(python=sys.executable))
    (tmp_path / "bin" / "python3").chmod(0o755)
    subprocess.run([str(tmp_path / "bin" / "python3"), "-m", "venv", str(tmp_path / "venv")], check=True)
    r, calls = run_phase(tmp_path, "python", {"HEPBENCH_SRC": "/src"})
    assert r.returncode == 0, r.stderr
    assert calls == [["install", "--quiet", "--no-deps", "/src"], ["check"]]


def test_the_layer_phase_gathers_hepbench_s_installed_files_and_the_prefix_but_not_the_venv(tmp_path):
    # The image copies the venv from the deps stage and this folder on top: a file missing here is
    # missing in the image, a venv file here is a second copy of the big layer.
    prefix, layer = tmp_path / "opt", tmp_path / "layer"
    venv = prefix / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    files = {
        "hepbench/__init__.py": "",
        "hepbench/__pycache__/__init__.cpython-311.pyc": "pyc",
        "hepbench-0.1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: hepbench\nVersion: 0.1.0\n",
        "../../../bin/hepbench": "#!/bin/sh\n",
        "numpy/__init__.py": "",
        "../../../bin/pip": "",
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    record = [n for n in files if not n.startswith(("numpy", "../../../bin/pip"))] + ["hepbench-0.1.0.dist-info/RECORD"]
    (site / "hepbench-0.1.0.dist-info" / "RECORD").write_text("".join(f"{n},,\n" for n in record))
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    for name in ("data/tfds/delphes_pf/1.1.0/checksums.json", "data/CHECKSUM", "src/pyproject.toml", "install.sh"):
        (prefix / name).parent.mkdir(parents=True, exist_ok=True)
        (prefix / name).write_text(name)

    def layer_phase():
        return subprocess.run(
            ["sh", str(ROOT / "container" / "install.sh"), "layer"],
            capture_output=True,
            text=True,
            env={
                "PATH": "/usr/bin:/bin",
                "HEPBENCH_PREFIX": str(prefix),
                "HEPBENCH_LAYER": str(layer),
                "PYTHONPATH": str(site),
            },
        )

    r = layer_phase()
    assert r.returncode == 0, r.stderr
    gathered = {str(p.relative_to(layer / prefix.relative_to("/"))) for p in layer.rglob("*") if p.is_file()}
    installed = {"venv/lib/python3.11/site-packages/" + n for n in record if not n.startswith("..")}
    assert gathered == installed | {
        "venv/bin/hepbench",
        "data/tfds/delphes_pf/1.1.0/checksums.json",
        "data/CHECKSUM",
        "src/pyproject.toml",
        "install.sh",
    }
    assert (layer / prefix.relative_to("/") / "src" / "pyproject.toml").read_text() == "src/pyproject.toml"

    (site / "hepbench" / "__init__.py").unlink()  # a broken installation: the phase stops, naming the file
    r = layer_phase()
    assert r.returncode != 0 and f"installed file {site / 'hepbench' / '__init__.py'} is not in the venv" in r.stderr
    layer = prefix / "layer"  # inside the prefix it would copy itself: refused, the prefix untouched
    r = layer_phase()
    assert r.returncode != 0 and f"HEPBENCH_LAYER={layer} must be outside the prefix" in r.stderr
    assert (prefix / "install.sh").exists() and not layer.exists()
    layer = tmp_path / "layer"
    shutil.rmtree(site / "hepbench-0.1.0.dist-info")
    r = layer_phase()
    assert r.returncode != 0 and f"hepbench is not installed in the venv {venv}" in r.stderr


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
    r = subprocess.run(
        ["sh", str(ROOT / "container" / "install.sh"), "horovod"],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HEPBENCH_VENV": str(venv),
            "HEPBENCH_FLAVOUR": "gpu",
            "HEPBENCH_PIP_CACHE": str(tmp_path / "cache"),
            "TMPDIR": str(tmp_path),
        },
    )
    log = (tmp_path / "pip.log").read_text().splitlines() if (tmp_path / "pip.log").exists() else []
    return r, log


@pytest.mark.parametrize("runtime, series", [("13.0.96", "13.0"), (None, "13.0")])
def test_the_gpu_horovod_build_gets_one_consistent_cuda_toolkit_and_the_venv_s_nccl(tmp_path, runtime, series):
    r, log = horovod_gpu_phase(tmp_path, runtime, nccl=True)
    assert r.returncode == 3, r.stderr  # the fake `pip wheel`: the phase reached Horovod's build
    toolkit = next(line for line in log if "--target" in line).split()
    assert [w for w in toolkit if w.startswith("nvidia-")] == [
        f"nvidia-cuda-nvcc=={series}.*",
        f"nvidia-cuda-crt=={series}.*",
        f"nvidia-nvvm=={series}.*",
        f"nvidia-cuda-cccl=={series}.*",
        f"nvidia-cuda-runtime=={runtime or series + '.*'}",
    ]
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
