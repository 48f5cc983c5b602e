#!/usr/bin/env bash
# Build the image for another CPU architecture on this machine, under emulation (QEMU user mode
# through binfmt_misc), for HEPscore's per-architecture images (docs/architectures.md). Slow
# (Horovod compiles under emulation) and never in CI; a site with a native node or docker buildx
# builds it as on x86-64 (docs/architectures.md).
#
#   container/build-arch.sh tools                       qemu-user-static + binfmt-support (root, apt), the QEMU entry enabled
#   container/build-arch.sh base ARCH                   localhost/debian:bookworm-{arm64,amd64} from debootstrap (once)
#   container/build-arch.sh build ARCH IMAGE [ARGS...]  container/dev.sh build on that base (ARGS: more buildah options)
#   container/build-arch.sh facts ARCH IMAGE            container/dev.sh facts, plus `uname -m` inside
#
# ARCH: aarch64 (alias arm64) or x86_64 (alias amd64); HEPscore and `uname -m` say aarch64, Debian
# and OCI say arm64. Everything else (build volumes: the pip cache overlay and the Horovod wheel
# store, runtime settings) is container/dev.sh's: this script only names the base and the platform.
# Horovod's wheel-store key holds the machine (container/install.sh, horovod_key), so wheels of two
# architectures never mix in the one store.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=container/dev.sh

usage() { sed -n '7,10p' "$0" >&2; exit 2; }

# ARCH → Debian's name and the OCI platform; an unknown one is refused before anything runs.
arch_names() {
  case "$1" in
    aarch64|arm64) DEBARCH=arm64 MACHINE=aarch64 ;;
    x86_64|amd64) DEBARCH=amd64 MACHINE=x86_64 ;;
    *) echo "build-arch.sh: ARCH must be aarch64 (arm64) or x86_64 (amd64), not '$1'" >&2; exit 2 ;;
  esac
  PLATFORM=linux/$DEBARCH
  BASE=localhost/debian:bookworm-$DEBARCH
}

# A foreign architecture's binaries run only through a binfmt_misc entry with the F flag (the
# interpreter opened when registered, so it works inside the build's chroot, which holds no QEMU).
need_emulation() {
  [[ $(uname -m) == "$MACHINE" ]] && return 0
  local entry=/proc/sys/fs/binfmt_misc/qemu-$MACHINE
  if [[ ! -f $entry ]] || ! grep -q '^enabled' "$entry"; then
    echo "build-arch.sh: no binfmt_misc entry $entry: run '$0 tools' (qemu-user-static, binfmt-support)" >&2; exit 1
  fi
  if ! grep -q '^flags:.*F' "$entry"; then
    echo "build-arch.sh: $entry lacks the F (fix-binary) flag: builds in a chroot cannot find QEMU" >&2; exit 1
  fi
}

case "${1:-}" in
  tools)
    if ! command -v qemu-aarch64-static >/dev/null || ! command -v update-binfmts >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support
    fi
    # The packages register their entries when installed; a machine that booted since (without
    # systemd's binfmt units, as these VMs) has binfmt_misc unmounted and nothing registered.
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    foreign=aarch64; [[ $(uname -m) == aarch64 ]] && foreign=x86_64
    update-binfmts --enable "qemu-$foreign" 2>/dev/null || true  # "already enabled" is fine
    arch_names "$foreign"; need_emulation ;;
  base)
    [[ $# -eq 2 ]] || usage
    arch_names "$2"; need_emulation
    podman image exists "$BASE" && { echo "build-arch.sh: $BASE exists"; exit 0; }
    rootfs=$(mktemp -d /var/tmp/bookworm-$DEBARCH-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    # The same minimal Debian as dev.sh's base; debootstrap's second stage runs the target's
    # binaries (dpkg, maintainer scripts) through the emulator.
    start=$SECONDS
    debootstrap --arch="$DEBARCH" --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    [[ $(chroot "$rootfs" uname -m) == "$MACHINE" ]] \
      || { echo "build-arch.sh: the new root's uname -m is not $MACHINE" >&2; exit 1; }
    tar -C "$rootfs" -c . | podman import --os linux --arch "$DEBARCH" - "$BASE" >/dev/null
    echo "build-arch.sh: $BASE from debootstrap in $((SECONDS - start)) s" ;;
  build)
    [[ $# -ge 3 ]] || usage
    arch_names "$2"; need_emulation
    image=$3; shift 3
    podman image exists "$BASE" || { echo "build-arch.sh: no base $BASE: run '$0 base $MACHINE' first" >&2; exit 1; }
    # dev.sh passes its own base first; buildah keeps the last value of a repeated --build-arg.
    start=$SECONDS
    "$DEV" build "$image" --platform "$PLATFORM" --build-arg BASE_IMAGE="$BASE" "$@"
    echo "build-arch.sh: $image ($PLATFORM) built in $((SECONDS - start)) s" ;;
  facts)
    [[ $# -eq 3 ]] || usage
    arch_names "$2"; need_emulation
    got=$(podman image inspect --format '{{.Architecture}}' "$3")
    [[ $got == "$DEBARCH" ]] || { echo "build-arch.sh: $3 is $got, not $DEBARCH" >&2; exit 1; }
    echo "== uname -m"
    "$DEV" run "$3" --platform "$PLATFORM" --entrypoint uname -- -m
    "$DEV" facts "$3" ;;
  *)
    usage ;;
esac
