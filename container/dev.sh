#!/usr/bin/env bash
# Build and run the image on a machine without a Docker engine or registry access (the Debian 12
# development and CI machines; see docs/containers.md). On a real site
# use `docker build` / `apptainer build` directly.
#
#   container/dev.sh tools                    install podman, buildah, debootstrap, runc (root, apt)
#   container/dev.sh base                     localhost/debian:bookworm from debootstrap (once)
#   container/dev.sh build IMAGE [ARGS...]    buildah bud of the Dockerfile (ARGS: more buildah options)
#   container/dev.sh run IMAGE [PODMAN ARGS...] -- [ENTRYPOINT ARGS...]
#   container/dev.sh sif IMAGE OUT.sif [ARGS...]    IMAGE → OCI layout → `apptainer build` (ARGS: its options)
#   container/dev.sh build-sif-def OUT.sif [ARGS...]  Singularity.def by `apptainer build`, on the local base
#   container/dev.sh facts IMAGE|SIF          baked data checksum, pip freeze, build tools, Horovod's build
#   container/dev.sh compare A B              the facts of two images (IMAGE or SIF), side by side
# Apptainer: $APPTAINER (default `apptainer` on the PATH); it must see /var/tmp and this tree.
set -euo pipefail
CALLER=$PWD
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
APPTAINER=${APPTAINER:-apptainer}
# What two builds of the image must agree on (the same install script, phases and settings): the
# baked data set, every installed Python package, no build tools left, Horovod's frameworks.
FACTS=$(cat <<'EOF'
py=/opt/hepbench/venv/bin/python
echo "== data"; cat /opt/hepbench/data/CHECKSUM
$py -c 'import json; print({k: v["events"] for k, v in json.load(open("/opt/hepbench/data/info.json"))["splits"].items()})'
echo "== pip freeze"; $py -m pip freeze --all 2>/dev/null | sort
echo "== build tools"; for t in g++ c++ cmake make; do command -v $t || true; done
echo "== horovod"
TF_CPP_MIN_LOG_LEVEL=3 $py -c 'import horovod, horovod.tensorflow as h
print(horovod.__version__, "tensorflow", *(n for n in ("mpi", "gloo", "nccl") if getattr(h, n + "_built")()))'
EOF
)

absolute() { case "$1" in /*) echo "$1" ;; *) echo "$CALLER/$1" ;; esac; }

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
  run)
    image=$2; shift 2
    podman_args=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do podman_args+=("$1"); shift; done
    [[ "${1:-}" == "--" ]] && shift
    CONTAINERS_CONF=$PWD/container/containers.conf \
      podman --runtime /usr/bin/runc run --rm "${podman_args[@]}" "$image" "$@" ;;
  sif)
    # An OCI layout with uncompressed layers: Apptainer converts it as it converts a docker-archive
    # or a registry's image (ENV, ENTRYPOINT → runscript), without compressing the layers into its
    # cache first and extracting them again (docs/containers.md: the timings of both routes).
    image=$2 out=$(absolute "$3"); shift 3
    layout=$(mktemp -d /var/tmp/mlpf-bmk-oci.XXXXXX)
    trap 'rm -rf "$layout"' EXIT
    start=$SECONDS; podman save --quiet --format oci-dir --uncompressed -o "$layout/image" "$image"
    echo "dev.sh: podman save: $((SECONDS - start)) s, $(du -sm "$layout" | cut -f1) MB" >&2
    start=$SECONDS; "$APPTAINER" build --force --disable-cache "$@" "$out" "oci://$layout/image"
    echo "dev.sh: apptainer build: $((SECONDS - start)) s, $(du -m "$out" | cut -f1) MB" >&2 ;;
  build-sif-def)
    # Singularity.def unchanged but for its header: `Bootstrap: docker` / `From: debian:bookworm-slim`
    # (no registry here) become the local base as a docker-archive. What the build binds (the
    # Horovod wheel store, the CA bundle, a pip cache named in HEPBENCH_PIP_CACHE) is never copied
    # into the image, but Apptainer binds only onto existing paths: the base gets those mount
    # points, which stay in the SIF as an empty folder and file.
    out=$(absolute "$2"); shift 2
    work=$(mktemp -d /var/tmp/mlpf-bmk-def.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$WHEELS"
    binds=(--bind "$WHEELS:/var/cache/hepbench-wheels") points=(/var/cache/hepbench-wheels) files=()
    if [[ -n "${HEPBENCH_PIP_CACHE:-}" ]]; then
      mkdir -p "$PIP_CACHE"; binds+=(--bind "$PIP_CACHE:/var/cache/hepbench-pip"); points+=(/var/cache/hepbench-pip)
    fi
    if [[ -f "$CA" ]]; then
      # A copy: an Apptainer that runs in a root of its own may not see this machine's /etc.
      cp "$CA" "$work/pipcert"
      binds+=(--bind "$work/pipcert:/run/secrets/pipcert"); points+=(/run/secrets) files+=(/run/secrets/pipcert)
    fi
    ctr=$(buildah from --pull=never "$BASE")
    buildah run --isolation chroot "$ctr" -- sh -c 'mkdir -p "$@"' _ "${points[@]}"
    [[ ${#files[@]} -gt 0 ]] && buildah run --isolation chroot "$ctr" -- touch "${files[@]}"
    buildah commit --rm --quiet "$ctr" "docker-archive:$work/base.tar" >/dev/null
    sed -e 's|^Bootstrap: docker$|Bootstrap: docker-archive|' -e "s|^From: debian:bookworm-slim\$|From: $work/base.tar|" \
      Singularity.def > "$work/Singularity.def"
    [[ $(diff Singularity.def "$work/Singularity.def" | grep -c '^>') == 2 ]] \
      || { echo "dev.sh: Singularity.def's header is not 'Bootstrap: docker' / 'From: debian:bookworm-slim'" >&2; exit 1; }
    start=$SECONDS
    "$APPTAINER" build --force --disable-cache "${binds[@]}" "$@" "$out" "$work/Singularity.def"
    echo "dev.sh: apptainer build of Singularity.def: $((SECONDS - start)) s, $(du -m "$out" | cut -f1) MB" >&2 ;;
  facts)
    if [[ "$2" == *.sif ]]; then
      "$APPTAINER" exec --cleanenv --contain "$(absolute "$2")" sh -c "$FACTS"
    else
      CONTAINERS_CONF=$PWD/container/containers.conf \
        podman --runtime /usr/bin/runc run --rm --entrypoint sh "$2" -c "$FACTS"
    fi ;;
  compare)
    a=$(mktemp) b=$(mktemp)
    trap 'rm -f "$a" "$b"' EXIT
    "$0" facts "$2" > "$a"; "$0" facts "$3" > "$b"
    if diff -u --label "$2" --label "$3" "$a" "$b"; then echo "dev.sh: $2 and $3 have the same facts"
    else echo "dev.sh: $2 and $3 differ (above)" >&2; exit 1; fi ;;
  *)
    sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
