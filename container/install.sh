#!/bin/sh
# Installs mlpf-bmk into an image, in phases. The Dockerfile and Singularity.def both call this one
# script (same phases, same order), so the two images cannot drift apart.
#
#   install.sh system-build    OS packages to build: Python 3.11, compilers, OpenMPI headers
#   install.sh deps            venv in /opt/hepbench/venv; hepbench's requirements, its engines (BACKENDS) and the qsvr and
#                              hpo extras in ONE resolver run, read from pyproject.toml alone (no source needed yet)
#   install.sh horovod         Horovod 0.28.1 built against the installed TensorFlow (Gloo + OpenMPI), or its stored wheel
#                              (nothing when the image holds no TensorFlow engine)
#   install.sh python          hepbench itself, without dependencies (the deps phase has them), then `pip check`
#   install.sh data            the default data subset (generated, or Zenodo), built and checksummed
#   install.sh layer           what python and data added, gathered in one folder for a multi-stage build's last stage
#   install.sh system-runtime  OS packages to run (no compilers)
#   install.sh strip           remove compilers and headers (single-stage builds: Singularity.def)
#   install.sh verify          imports and versions, printed at the end of every build
#
# Settings (environment): HEPBENCH_FLAVOUR cpu|gpu, HEPBENCH_BACKENDS (the engines the image holds,
# comma-separated from tensorflow, jax, torch; default tensorflow, the reference), HEPBENCH_TORCH_INDEX
# (an extra index for torch; default PyTorch's CPU-only index in the cpu flavour, none in the gpu
# flavour, whose torch is PyPI's CUDA build), HEPBENCH_DATA_SOURCE synthetic|zenodo,
# HEPBENCH_TRAIN_EVENTS / HEPBENCH_TEST_EVENTS / HEPBENCH_SEED (synthetic subset),
# HEPBENCH_PREFIX (default /opt/hepbench), HEPBENCH_SRC (the source tree, default PREFIX/src),
# HEPBENCH_VENV (default PREFIX/venv; `make setup` runs the horovod phase on its own .venv),
# HEPBENCH_LAYER (phase layer's folder, default /opt/hepbench-layer).
# Optional accelerators, none of which ends up in the image: an extra CA bundle for pip (a site
# proxy) mounted at /run/secrets/pipcert; a pip cache, HEPBENCH_PIP_CACHE or mounted at
# /var/cache/hepbench-pip; a store of built Horovod wheels, HEPBENCH_WHEELS or mounted at
# /var/cache/hepbench-wheels (see horovod_install: a wheel is reused only where it was built for).
set -eu

PREFIX=${HEPBENCH_PREFIX:-/opt/hepbench}
VENV=${HEPBENCH_VENV:-$PREFIX/venv}
SRC=${HEPBENCH_SRC:-$PREFIX/src}
LAYER=${HEPBENCH_LAYER:-/opt/hepbench-layer}
FLAVOUR=${HEPBENCH_FLAVOUR:-cpu}
BACKENDS=${HEPBENCH_BACKENDS:-tensorflow}
DATA_SOURCE=${HEPBENCH_DATA_SOURCE:-synthetic}
TRAIN_EVENTS=${HEPBENCH_TRAIN_EVENTS:-2000}
TEST_EVENTS=${HEPBENCH_TEST_EVENTS:-200}
SEED=${HEPBENCH_SEED:-0}
HOROVOD_VERSION=0.28.1
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

BUILD_PACKAGES="python3-dev g++ make cmake libopenmpi-dev"
RUNTIME_PACKAGES="python3 python3-venv ca-certificates openmpi-bin libopenmpi3 procps"

log() { echo "install.sh: $*"; }

pip_setup() {
  if [ -f /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi
  if [ -n "${HEPBENCH_PIP_CACHE:-}" ]; then
    export PIP_CACHE_DIR=$HEPBENCH_PIP_CACHE
  elif [ -d /var/cache/hepbench-pip ]; then
    export PIP_CACHE_DIR=/var/cache/hepbench-pip
  else
    export PIP_NO_CACHE_DIR=1
  fi
}

# What a built Horovod wheel depends on, as one folder name: Horovod's version, the TensorFlow it
# was compiled against (distribution and version), Python, libc, machine, the MPI it was linked
# with (or nompi) and the GPU operations. Empty when the MPI cannot be named: that build is not kept.
horovod_key() {
  if [ "${HOROVOD_WITH_MPI:-}" = 1 ]; then
    mpi=$(mpicxx --showme:version 2>/dev/null | sed -n 's/.*Open MPI \([0-9][0-9.]*\).*/openmpi\1/p')
    [ -n "$mpi" ] || return 0
  else
    mpi=nompi
  fi
  if [ -n "${HOROVOD_GPU_OPERATIONS:-}" ]; then
    cuda=$("${HOROVOD_CUDA_HOME:+$HOROVOD_CUDA_HOME/bin/}nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p')
    mpi="$mpi-$(echo "$HOROVOD_GPU_OPERATIONS" | tr 'A-Z' 'a-z')-cuda${cuda:-unknown}"
  fi
  "$VENV/bin/python" - "$HOROVOD_VERSION" "$mpi" <<'EOF'
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

for dist in ("tensorflow-cpu", "tensorflow"):
    try:
        tf = f"{dist}{version(dist)}"
        break
    except PackageNotFoundError:
        pass
else:
    sys.exit("install.sh: phase horovod needs TensorFlow in the venv (phase deps first)")
py = f"cp{sys.version_info.major}{sys.version_info.minor}"
print("-".join(["horovod", sys.argv[1], tf, py, "".join(platform.libc_ver()), platform.machine(), sys.argv[2]]))
EOF
}

# Horovod from the wheel store when it holds a wheel under this build's key, else compiled (a few
# minutes) into the store for the next build. The lock makes a build running at the same time (the
# image test builds both definitions at once) wait for the first one's wheel instead of compiling
# it too. Without a store (a site's plain `docker build`) it is compiled into a scratch folder.
horovod_install() {
  key=$(horovod_key)
  store=${HEPBENCH_WHEELS:-}
  if [ -z "$store" ] && [ -d /var/cache/hepbench-wheels ]; then store=/var/cache/hepbench-wheels; fi
  if [ -n "$store" ] && [ -n "$key" ]; then
    dir=$store/$key
    mkdir -p "$dir"
    if command -v flock >/dev/null 2>&1; then exec 9>"$dir.lock"; flock 9; fi
  else
    dir=$(mktemp -d)
    log "Horovod wheel not kept (${key:-its MPI not identified}; ${store:-no wheel store})"
  fi
  set -- "$dir/horovod-$HOROVOD_VERSION"-*.whl
  if [ -f "$1" ]; then
    log "Horovod from the stored wheel $1"
  else
    # Against the TensorFlow just installed, hence no build isolation; --no-cache-dir keeps it out
    # of pip's own wheel cache, which would hand it out whatever it was built against.
    rm -rf "$dir.partial"
    MAKEFLAGS="-j$(nproc)" "$VENV/bin/pip" wheel --quiet --no-deps --no-build-isolation --no-cache-dir \
      --wheel-dir "$dir.partial" "horovod==$HOROVOD_VERSION"
    mv "$dir.partial"/horovod-*.whl "$dir/"
    rmdir "$dir.partial"
    set -- "$dir/horovod-$HOROVOD_VERSION"-*.whl
    log "Horovod compiled: $1"
  fi
  "$VENV/bin/pip" install --quiet "$1"
  if [ -n "$store" ] && [ -n "$key" ]; then exec 9>&-; else rm -rf "$dir"; fi
}

# The gpu flavour's Horovod: NCCL operations on the GPUs (HOROVOD_GPU_OPERATIONS=NCCL), built from
# CUDA's PyPI wheels; the base image has no CUDA toolkit. The CUDA 12 wheels of tensorflow[and-cuda]
# hold no compiler (nvidia-cuda-nvcc-cu12 carries ptxas alone); CUDA 13's are a whole one (nvcc,
# cicc, headers, the static runtime: nvidia-cuda-nvcc, -nvvm, -crt, -runtime, -cccl, one tree
# nvidia/cu13). The venv's own CUDA 13 wheels are no toolkit: PyTorch pins the runtime (13.0) while
# jax[cuda13] takes the newest compiler (13.5) and no CCCL headers. So one consistent set, of the
# venv's runtime release (CUDA_BUILD_SERIES without one), goes into a scratch folder for this
# build only (about 270 MB, never in the image). CMake and nvcc look for the usual layout
# (lib64/libcudart.so, lib/libnccl.so; the wheels ship lib/ and the versioned files alone):
# symlinks in the scratch folder give it. Horovod links CUDA's runtime statically and NCCL (the venv's nvidia/nccl, the
# one TensorFlow loads) through a relative rpath, so the wheel loads wherever the venv is.
# Kernels: one cubin per major version from sm_75 (the oldest CUDA 13 builds for) to sm_120 (a cubin
# runs on later minors: sm_80 on 8.6/8.9, sm_100 on 10.3) and PTX for newer GPUs;
# HOROVOD_BUILD_CUDA_CC_LIST overrides the list.
CUDA_BUILD_SERIES=13.0
horovod_cuda() {
  scratch=$1
  nccl=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/nccl
  if [ ! -f "$nccl/include/nccl.h" ] || [ ! -f "$nccl/lib/libnccl.so.2" ]; then
    echo "install.sh: phase horovod (gpu): no NCCL in the venv ($nccl; tensorflow[and-cuda] installs nvidia-nccl-cu12)" >&2
    exit 1
  fi
  runtime=$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("nvidia-cuda-runtime"))' 2>/dev/null || true)
  series=${runtime:+$(echo "$runtime" | cut -d. -f1-2)}
  series=${series:-$CUDA_BUILD_SERIES}
  log "Horovod's CUDA toolkit: the CUDA $series wheels${runtime:+ (the venv's runtime $runtime)}, in a scratch folder"
  "$VENV/bin/pip" install --quiet --target "$scratch/wheels" "nvidia-cuda-nvcc==$series.*" "nvidia-cuda-crt==$series.*" \
    "nvidia-nvvm==$series.*" "nvidia-cuda-cccl==$series.*" "nvidia-cuda-runtime==${runtime:-$series.*}"
  cuda=$scratch/wheels/nvidia/cu13   # nvcc finds its headers and libraries relative to itself
  ln -s lib "$cuda/lib64"
  ln -s libcudart.so.13 "$cuda/lib/libcudart.so"
  mkdir -p "$scratch/nccl/lib"       # the venv's NCCL stays as pip installed it
  ln -s "$nccl/include" "$scratch/nccl/include"
  ln -s "$nccl/lib/libnccl.so.2" "$scratch/nccl/lib/libnccl.so"
  export HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_CUDA_HOME="$cuda" HOROVOD_NCCL_HOME="$scratch/nccl" \
    HOROVOD_NCCL_LINK=SHARED HOROVOD_BUILD_CUDA_CC_LIST=${HOROVOD_BUILD_CUDA_CC_LIST:-75,80,90,100,110,120}
  # Horovod's .so files are site-packages/horovod/<framework>/*.so: NCCL is two folders up. (CMake
  # also keeps the scratch NCCL folder in the RUNPATH, after this one: gone once the build ends.)
  export LDFLAGS="${LDFLAGS:+$LDFLAGS }-Wl,-rpath,\$ORIGIN/../../nvidia/nccl/lib"
}

# TensorFlow's nvidia-nccl-cu12 and PyTorch's (and jax[cuda13]'s) nvidia-nccl-cu13 install the same
# file, nvidia/nccl/lib/libnccl.so.2, and the wheel pip happens to install last wins: with an older
# NCCL, PyTorch's CUDA build fails to import (undefined symbol ncclCommResume). The newest of the
# venv's NCCL wheels is reinstalled so that its file is the one in place; NCCL 2.x keeps its ABI,
# so TensorFlow and Horovod load it too.
newest_nccl() {
  newest=$("$VENV/bin/python" - <<'EOF'
from importlib.metadata import distributions

found = {d.metadata["Name"].lower(): d.version for d in distributions()
         if (d.metadata["Name"] or "").lower().startswith("nvidia-nccl-")}


def key(version):
    return tuple(int(part) if part.isdigit() else -1 for part in version.split(".")[:4])


if len(found) > 1:
    name = max(found, key=lambda n: key(found[n]))
    print(f"{name}=={found[name]}")
EOF
)
  if [ -n "$newest" ]; then
    log "NCCL: several wheels share nvidia/nccl/lib; reinstalling the newest, $newest"
    "$VENV/bin/pip" install --quiet --no-deps --force-reinstall "$newest"
  fi
}

has_backend() { case ",$BACKENDS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# The pyproject extras of this flavour and these backends: TensorFlow's is the flavour itself
# (tensorflow-cpu or tensorflow[and-cuda]); the qsvr and hpo workloads are always in.
extras() {
  out=""
  if has_backend tensorflow; then out=$FLAVOUR; fi
  if has_backend jax; then
    if [ "$FLAVOUR" = gpu ]; then out="$out,jax-gpu"; else out="$out,jax"; fi
  fi
  if has_backend torch; then out="$out,torch"; fi
  echo "${out#,},qsvr,hpo"
}

apt_install() {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@"
  apt-get clean
  rm -rf /var/lib/apt/lists/*
}

case "$FLAVOUR" in cpu|gpu) ;; *) echo "install.sh: HEPBENCH_FLAVOUR must be cpu or gpu, not '$FLAVOUR'" >&2; exit 2 ;; esac
case "$DATA_SOURCE" in synthetic|zenodo) ;; *) echo "install.sh: HEPBENCH_DATA_SOURCE must be synthetic or zenodo, not '$DATA_SOURCE'" >&2; exit 2 ;; esac
named=0
for backend in $(echo "$BACKENDS" | tr ',' ' '); do
  case "$backend" in tensorflow|jax|torch) named=$((named + 1)) ;; *) echo "install.sh: HEPBENCH_BACKENDS: '$backend' is not one of tensorflow, jax, torch" >&2; exit 2 ;; esac
done
[ "$named" -gt 0 ] || { echo "install.sh: HEPBENCH_BACKENDS must name at least one of tensorflow, jax, torch" >&2; exit 2; }
# PyPI's torch is a CUDA build of several GB even for a CPU: the cpu flavour takes PyTorch's CPU build.
if [ "$FLAVOUR" = cpu ]; then TORCH_INDEX=${HEPBENCH_TORCH_INDEX-https://download.pytorch.org/whl/cpu}; else TORCH_INDEX=${HEPBENCH_TORCH_INDEX-}; fi

for phase in "$@"; do
  log "phase $phase (flavour $FLAVOUR, backends $BACKENDS)"
  case "$phase" in
    system-build)
      # shellcheck disable=SC2086
      apt_install $RUNTIME_PACKAGES $BUILD_PACKAGES ;;
    system-runtime)
      # shellcheck disable=SC2086
      apt_install $RUNTIME_PACKAGES ;;
    deps)
      pip_setup
      python3 -m venv "$VENV"
      "$VENV/bin/pip" install --quiet --upgrade pip
      # One resolver run: the engines (TensorFlow, JAX, PyTorch as BACKENDS asks; their versions
      # the reference's, container/constraints.txt), TFDS, protobuf<6, tensorflow-metadata<1.17
      # (the TensorFlow extras'), the qsvr extra (scikit-learn, dimod, dwave-samplers:
      # the qsvr-bmk workload) and the hpo extra (Ray Tune, hpbandster, ConfigSpace: the hpo
      # workload) solved together. Read from pyproject.toml alone, before the source is copied, so
      # that an image build after a code change reuses this layer (the big one) and Horovod's.
      reqs=$(mktemp)
      python3 - "$SRC/pyproject.toml" "$(extras)" > "$reqs" <<'EOF'
import re
import sys
import tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project.get("optional-dependencies", {})
out, todo, seen = list(project["dependencies"]), sys.argv[2].split(","), set()
while todo:  # an extra may name the project's own extras: name[a,b]
    extra = todo.pop(0)
    if extra in seen:
        continue
    if extra not in extras:
        sys.exit(f"install.sh: {sys.argv[1]} has no extra '{extra}'")
    seen.add(extra)
    for req in extras[extra]:
        own = re.fullmatch(rf"{re.escape(project['name'])}\[([^\]]+)\]", req.strip())
        if own:
            todo += own.group(1).split(",")
        else:
            out.append(req)
print("\n".join(dict.fromkeys(out)))
EOF
      set -- --quiet --constraint "$SRC/container/constraints.txt"
      if has_backend torch && [ -n "$TORCH_INDEX" ]; then set -- "$@" --extra-index-url "$TORCH_INDEX"; fi
      while IFS= read -r req; do set -- "$@" "$req"; done < "$reqs"
      rm -f "$reqs"
      "$VENV/bin/pip" install "$@"
      newest_nccl ;;
    python)
      # The requirements are in (phase deps): hepbench alone, then pip's check that none is missing.
      pip_setup
      "$VENV/bin/pip" install --quiet --no-deps "$SRC"
      "$VENV/bin/pip" check ;;
    horovod)
      if ! has_backend tensorflow; then log "no Horovod: the image holds no TensorFlow engine"; continue; fi
      pip_setup
      export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
      # MPI where OpenMPI's compiler wrapper is installed: always in the image (system-build
      # installs it, and verify insists on it); on a development machine only if it is there.
      if command -v mpicxx >/dev/null 2>&1; then export HOROVOD_WITH_MPI=1; else export HOROVOD_WITHOUT_MPI=1; fi
      cuda_scratch=""
      if [ "$FLAVOUR" = gpu ]; then cuda_scratch=$(mktemp -d); horovod_cuda "$cuda_scratch"; fi
      horovod_install
      [ -z "$cuda_scratch" ] || rm -rf "$cuda_scratch" ;;
    data)
      manual=$(mktemp -d)
      if [ "$DATA_SOURCE" = zenodo ]; then
        "$VENV/bin/hepbench" data fetch --files 20 --qcd-files 2 --out "$manual"
      else
        "$VENV/bin/hepbench" data synth --process ttbar --events "$TRAIN_EVENTS" --seed "$SEED" --out "$manual" --jobs "$(nproc)"
        "$VENV/bin/hepbench" data synth --process qcd --events "$TEST_EVENTS" --seed "$SEED" --out "$manual" --jobs "$(nproc)"
      fi
      "$VENV/bin/hepbench" data build --manual-dir "$manual" --data-dir "$PREFIX/data/tfds"
      # The built set keeps the source files' checksum in its metadata: the sources can go.
      rm -rf "$manual" "$PREFIX/data/tfds/downloads"
      # CHECKSUM: the built files' combined digest (checksums.json), verified here as every run
      # verifies it before timing; runs report it as bmkdata_checksum.
      "$VENV/bin/hepbench" data verify --data-dir "$PREFIX/data/tfds"
      "$VENV/bin/hepbench" data info "$PREFIX/data/tfds" --json > "$PREFIX/data/info.json"
      "$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['checksum'])" \
        "$PREFIX/data/info.json" > "$PREFIX/data/CHECKSUM"
      log "data checksum $(cat "$PREFIX/data/CHECKSUM")" ;;
    layer)
      # The Dockerfile's image takes the venv from the deps stage as it is, so that its copy (the
      # big layer) stays cached across code changes, and this folder on top: the files of
      # hepbench's own installation (its RECORD) and everything under PREFIX but the venv (the
      # data, the source, this script), each at its own path below LAYER.
      # -P: not the working directory's hepbench (a checkout's egg-info) but the venv's.
      "$VENV/bin/python" -P - "$PREFIX" "$VENV" "$LAYER" <<'EOF'
import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, distribution

prefix, venv, layer = (os.path.abspath(p) for p in sys.argv[1:])
if layer == prefix or layer.startswith(prefix + os.sep):
    sys.exit(f"install.sh: HEPBENCH_LAYER={layer} must be outside the prefix {prefix} (the layer copies the prefix)")
try:
    dist = distribution("hepbench")
except PackageNotFoundError:
    sys.exit(f"install.sh: phase layer: hepbench is not installed in the venv {venv} (phase python first)")
if dist.files is None:
    sys.exit(f"install.sh: phase layer: hepbench's installation in {venv} lists no files (no RECORD)")
shutil.rmtree(layer, ignore_errors=True)  # after the checks: never the prefix itself


def put(path):
    target = layer + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.copytree(path, target, symlinks=True)
    else:
        shutil.copy2(path, target, follow_symlinks=False)


for record in dist.files:
    path = os.path.normpath(dist.locate_file(record))
    if not path.startswith(venv + os.sep) or not os.path.lexists(path):
        sys.exit(f"install.sh: phase layer: hepbench's installed file {path} is not in the venv {venv}")
    put(path)
for name in sorted(os.listdir(prefix)):
    if os.path.join(prefix, name) != venv:
        put(os.path.join(prefix, name))
print(f"install.sh: layer {layer}: hepbench's {len(dist.files)} installed files, and {prefix} but the venv")
EOF
      ;;
    strip)
      # shellcheck disable=SC2086
      apt-get purge -y -qq --auto-remove $BUILD_PACKAGES
      rm -rf /var/lib/apt/lists/* /root/.cache ;;
    verify)
      # Each engine: its framework, and Keras on it, in a process of its own (Keras picks its backend once).
      for backend in $(echo "$BACKENDS" | tr ',' ' '); do
        KERAS_BACKEND=$backend "$VENV/bin/python" - "$backend" <<'EOF'
import sys
import keras
assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
framework = __import__(sys.argv[1])
print(f"engine {sys.argv[1]}: {sys.argv[1]} {framework.__version__}, Keras {keras.__version__}")
EOF
      done
      if has_backend tensorflow; then
        "$VENV/bin/python" - <<'EOF'
import horovod, keras, tensorflow as tf
import horovod.tensorflow as hvd
print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
      f"Horovod {horovod.__version__} (gloo {hvd.gloo_built()}, mpi {hvd.mpi_built()}, nccl {hvd.nccl_built()})")
assert hvd.gloo_built(), "Horovod was built without Gloo"
assert hvd.mpi_built(), "Horovod was built without MPI (mpirun/srun would start lone 1-rank jobs)"
EOF
      fi
      if [ "$FLAVOUR" = gpu ]; then
        # The gpu flavour's CUDA builds, checked on a build machine without a GPU: what each engine
        # was built with and the NVIDIA wheels beside it (a CPU-only wheel here would pass unseen).
        TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" - "$BACKENDS" <<'EOF'
import sys
from importlib.metadata import distributions, version
backends = sys.argv[1].split(",")
if "tensorflow" in backends:
    import tensorflow as tf
    import horovod.tensorflow as hvd
    info = tf.sysconfig.get_build_info()
    print(f"gpu: TensorFlow {tf.__version__} is_cuda_build {info.get('is_cuda_build')}, CUDA {info.get('cuda_version')}, "
          f"cuDNN {info.get('cudnn_version')}; Horovod NCCL {hvd.nccl_built()}, CUDA {hvd.cuda_built()}")
    assert info.get("is_cuda_build"), "TensorFlow is not a CUDA build"
    assert hvd.nccl_built(), "Horovod was built without NCCL"
if "jax" in backends:
    plugins = sorted(f"{d.metadata['Name']} {d.version}" for d in distributions()
                     if d.metadata["Name"].startswith(("jax-cuda", "jax_cuda")))
    print(f"gpu: jax {version('jax')}, jaxlib {version('jaxlib')}, {', '.join(plugins) or 'no CUDA plugin'}")
    assert plugins, "jax has no CUDA plugin (jax-cuda*-plugin)"
if "torch" in backends:
    import torch
    print(f"gpu: torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    assert torch.version.cuda, "torch is not a CUDA build"
wheels = sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"].startswith("nvidia-"))
print(f"gpu: {len(wheels)} NVIDIA wheels: {' '.join(wheels)}")
EOF
      fi
      "$VENV/bin/python" - <<'EOF'
import hepbench
print(f"hepbench {hepbench.__version__}")
import dimod, sklearn
from importlib.metadata import version
print(f"qsvr extra: scikit-learn {sklearn.__version__}, dimod {dimod.__version__}, "
      f"dwave-samplers {version('dwave-samplers')}")
import ConfigSpace, hpbandster, ray, ray.tune
print(f"hpo extra: ray[tune] {ray.__version__}, hpbandster {version('hpbandster')}, "
      f"ConfigSpace {version('ConfigSpace')}")
EOF
      ;;
    *)
      echo "install.sh: unknown phase '$phase'" >&2; exit 2 ;;
  esac
done
