#!/bin/sh
# Installs mlpf-bmk into an image, in phases. The Dockerfile and Singularity.def both call this one
# script (same phases, same order), so the two images cannot drift apart.
#
#   install.sh system-build    OS packages to build: Python 3.11, compilers, OpenMPI headers
#   install.sh python          venv in /opt/hepbench/venv; hepbench + TensorFlow + qsvr and hpo extras in ONE resolver run
#   install.sh horovod         Horovod 0.28.1 built against the installed TensorFlow (Gloo + OpenMPI)
#   install.sh data            the default data subset (generated, or Zenodo), built and checksummed
#   install.sh system-runtime  OS packages to run (no compilers)
#   install.sh strip           remove compilers and headers (single-stage builds: Singularity.def)
#   install.sh verify          imports and versions, printed at the end of every build
#
# Settings (environment): HEPBENCH_FLAVOUR cpu|gpu, HEPBENCH_DATA_SOURCE synthetic|zenodo,
# HEPBENCH_TRAIN_EVENTS / HEPBENCH_TEST_EVENTS / HEPBENCH_SEED (synthetic subset),
# HEPBENCH_SRC (the source tree, default /opt/hepbench/src). An extra CA bundle for pip (a site
# proxy) is used when mounted at /run/secrets/pipcert; a pip cache when mounted at
# /var/cache/hepbench-pip. Neither ends up in the image.
set -eu

PREFIX=/opt/hepbench
VENV=$PREFIX/venv
SRC=${HEPBENCH_SRC:-$PREFIX/src}
FLAVOUR=${HEPBENCH_FLAVOUR:-cpu}
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
  if [ -d /var/cache/hepbench-pip ]; then
    export PIP_CACHE_DIR=/var/cache/hepbench-pip
  else
    export PIP_NO_CACHE_DIR=1
  fi
}

apt_install() {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@"
  apt-get clean
  rm -rf /var/lib/apt/lists/*
}

case "$FLAVOUR" in cpu|gpu) ;; *) echo "install.sh: HEPBENCH_FLAVOUR must be cpu or gpu, not '$FLAVOUR'" >&2; exit 2 ;; esac
case "$DATA_SOURCE" in synthetic|zenodo) ;; *) echo "install.sh: HEPBENCH_DATA_SOURCE must be synthetic or zenodo, not '$DATA_SOURCE'" >&2; exit 2 ;; esac

for phase in "$@"; do
  log "phase $phase (flavour $FLAVOUR)"
  case "$phase" in
    system-build)
      # shellcheck disable=SC2086
      apt_install $RUNTIME_PACKAGES $BUILD_PACKAGES ;;
    system-runtime)
      # shellcheck disable=SC2086
      apt_install $RUNTIME_PACKAGES ;;
    python)
      pip_setup
      python3 -m venv "$VENV"
      "$VENV/bin/pip" install --quiet --upgrade pip
      # One resolver run: TensorFlow, TFDS, protobuf<6, tensorflow-metadata<1.17, the qsvr extra
      # (scikit-learn, dimod, dwave-samplers: the qsvr-bmk workload) and the hpo extra (Ray Tune,
      # hpbandster, ConfigSpace: the hpo workload) solved together.
      "$VENV/bin/pip" install --quiet "$SRC[$FLAVOUR,qsvr,hpo]" ;;
    horovod)
      pip_setup
      # Built against the TensorFlow just installed, hence no build isolation.
      export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITH_MPI=1 \
             HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
      if [ "$FLAVOUR" = gpu ] && command -v nvcc >/dev/null 2>&1; then
        export HOROVOD_GPU_OPERATIONS=NCCL   # a CUDA toolkit in the base image: NCCL allreduce
      fi
      MAKEFLAGS="-j$(nproc)" "$VENV/bin/pip" install --quiet --no-build-isolation "horovod==$HOROVOD_VERSION" ;;
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
      "$VENV/bin/hepbench" data info "$PREFIX/data/tfds" --json > "$PREFIX/data/info.json"
      "$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['checksum'])" \
        "$PREFIX/data/info.json" > "$PREFIX/data/CHECKSUM"
      log "data checksum $(cat "$PREFIX/data/CHECKSUM")" ;;
    strip)
      # shellcheck disable=SC2086
      apt-get purge -y -qq --auto-remove $BUILD_PACKAGES
      rm -rf /var/lib/apt/lists/* /root/.cache ;;
    verify)
      "$VENV/bin/python" - <<'EOF'
import horovod, keras, tensorflow as tf
import horovod.tensorflow as hvd
import hepbench
print(f"hepbench {hepbench.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
      f"Horovod {horovod.__version__} (gloo {hvd.gloo_built()}, mpi {hvd.mpi_built()}, nccl {hvd.nccl_built()})")
assert hvd.gloo_built(), "Horovod was built without Gloo"
assert hvd.mpi_built(), "Horovod was built without MPI (mpirun/srun would start lone 1-rank jobs)"
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
