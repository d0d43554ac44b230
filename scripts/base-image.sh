#!/usr/bin/env bash
# Print the name of a usable base image for the build.
#
# Uses BASE_IMAGE (default debian:bookworm-slim) when it is already local or can
# be pulled. Where no registry is reachable, builds an equivalent Debian bookworm
# root filesystem with debootstrap and imports it as LOCAL_BASE_IMAGE, saying so
# on stderr. Safe to run again: an existing local image is reused.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
LOCAL_BASE_IMAGE=${LOCAL_BASE_IMAGE:-ray-serve-haproxy/debian-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PULL_TIMEOUT_S=${PULL_TIMEOUT_S:-60}

log() { printf 'base-image: %s\n' "$*" >&2; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if have_image "$BASE_IMAGE"; then
  log "using $BASE_IMAGE (already local)"
  echo "$BASE_IMAGE"
  exit 0
fi
if timeout "$PULL_TIMEOUT_S" docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "using $BASE_IMAGE (pulled)"
  echo "$BASE_IMAGE"
  exit 0
fi
if have_image "$LOCAL_BASE_IMAGE"; then
  log "$BASE_IMAGE cannot be pulled; using the locally built $LOCAL_BASE_IMAGE"
  echo "$LOCAL_BASE_IMAGE"
  exit 0
fi

log "$BASE_IMAGE cannot be pulled; building $LOCAL_BASE_IMAGE with debootstrap from $DEBIAN_MIRROR"
command -v debootstrap >/dev/null 2>&1 || {
  apt-get update -qq || log "apt-get update reported errors; continuing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
rootfs=$(mktemp -d /var/tmp/rsh-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
if ! debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1; then
  tail -n 30 "$rootfs.log" >&2
  exit 1
fi
rm -f "$rootfs.log"
# Match debian:bookworm-slim: no apt lists or caches in the image.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["bash"]' \
  --message "debootstrap --variant=minbase bookworm $DEBIAN_MIRROR" \
  - "$LOCAL_BASE_IMAGE" >/dev/null
log "built $LOCAL_BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$LOCAL_BASE_IMAGE") bytes)"
echo "$LOCAL_BASE_IMAGE"
