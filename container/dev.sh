#!/usr/bin/env bash
# Build and run the image on a machine without a Docker engine or registry access (the Debian 12
# development and CI machines; see docs/containers.md). On a real site
# use `docker build` / `apptainer build` directly.
#
#   container/dev.sh tools                    install podman, buildah, debootstrap, runc (root, apt)
#   container/dev.sh base                     localhost/debian:bookworm from debootstrap (once)
#   container/dev.sh build IMAGE [ARGS...]    buildah bud of the Dockerfile (ARGS: more buildah options)
#   container/dev.sh build-def IMAGE [ARGS...]  Singularity.def → Dockerfile (spython) → buildah bud
#   container/dev.sh run IMAGE [PODMAN ARGS...] -- [ENTRYPOINT ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=localhost/debian:bookworm
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
# pip's cache: by default the host's own (what `make setup` downloaded), mounted as an overlay, so
# builds read it and their writes are dropped; a cache named in HEPBENCH_PIP_CACHE is the builds'
# own and they fill it. Never in an image either way.
HOST_PIP_CACHE=${PIP_CACHE_DIR:-$CACHE/pip}
PIP_CACHE=${HEPBENCH_PIP_CACHE:-$HOST_PIP_CACHE}
# Built Horovod wheels, one folder per build key (container/install.sh, horovod_key): shared with
# `make setup` and between the image builds, which write to it.
WHEELS=${HEPBENCH_WHEELS:-$CACHE/hepbench/wheels}
CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

build_volumes() {
  mkdir -p "$PIP_CACHE" "$WHEELS"
  local mode=
  [[ -z "${HEPBENCH_PIP_CACHE:-}" ]] && mode=:O
  local v=(--volume "$PIP_CACHE:/var/cache/hepbench-pip$mode" --volume "$WHEELS:/var/cache/hepbench-wheels")
  # The host's CA bundle lets pip through this machine's TLS proxy; mounted, never copied.
  [[ -f "$CA" ]] && v+=(--volume "$CA:/run/secrets/pipcert:ro")
  printf '%s\n' "${v[@]}"
}

case "${1:-}" in
  tools)
    command -v buildah >/dev/null && command -v podman >/dev/null && command -v runc >/dev/null \
      && command -v debootstrap >/dev/null && exit 0
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah debootstrap runc uidmap fuse-overlayfs ;;
  base)
    podman image exists "$BASE" && exit 0
    rootfs=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$rootfs" -c . | podman import - "$BASE"
    rm -rf "$rootfs" ;;
  build)
    image=$2; shift 2
    mapfile -t volumes < <(build_volumes)
    buildah bud --isolation chroot --network host --layers "${volumes[@]}" \
      --build-arg BASE_IMAGE="$BASE" -t "$image" -f Dockerfile "$@" . ;;
  build-def)
    image=$2; shift 2
    mapfile -t volumes < <(build_volumes)
    converted=$(mktemp /var/tmp/Singularity.XXXXXX.Dockerfile)
    spython recipe Singularity.def > "$converted"
    # Apptainer pulls debian:bookworm-slim; here the local base stands in for it.
    sed -i "s|^FROM .*|FROM $BASE|" "$converted"
    # install.sh reads its settings from HEPBENCH_X variables; those set here become ENV lines.
    for var in HEPBENCH_FLAVOUR HEPBENCH_BACKENDS HEPBENCH_TORCH_INDEX HEPBENCH_DATA_SOURCE HEPBENCH_TRAIN_EVENTS \
               HEPBENCH_TEST_EVENTS HEPBENCH_SEED; do
      [[ -n "${!var:-}" ]] && sed -i "/^FROM /a ENV $var=${!var}" "$converted"
    done
    buildah bud --isolation chroot --network host --layers "${volumes[@]}" -t "$image" -f "$converted" "$@" .
    rm -f "$converted" ;;
  run)
    image=$2; shift 2
    podman_args=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do podman_args+=("$1"); shift; done
    [[ "${1:-}" == "--" ]] && shift
    CONTAINERS_CONF=$PWD/container/containers.conf \
      podman --runtime /usr/bin/runc run --rm "${podman_args[@]}" "$image" "$@" ;;
  *)
    sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
