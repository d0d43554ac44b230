#!/usr/bin/env bash
# Print the name of a usable base image for the build, for one platform.
#
# Usage: scripts/base-image.sh [PLATFORM]   (linux/amd64 or linux/arm64; default: this machine's)
#
# Uses BASE_IMAGE (default debian:bookworm-slim) when it is already local for that platform or
# can be pulled. Where no registry is reachable, builds the equivalent of Debian's slim image
# with debootstrap and imports it as LOCAL_BASE_IMAGE (default
# ray-serve-haproxy/debian-base:bookworm-slim-<arch>), saying so on stderr. A foreign
# architecture is bootstrapped under qemu user emulation (scripts/enable-emulation.sh).
# Safe to run again: an existing local image is reused.
#
# "As lean as slim" means what Debian's own slim images do (docker-library's debuerreotype):
# dpkg never installs documentation (but copyrights), man or info pages and locales; apt keeps
# no package caches, downloaded archives or translations. The rules stay in the image, so the
# build's own `apt-get install` layers stay lean too.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
native_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
platform=${1:-linux/$native_arch}
arch=${platform#linux/}
case "$arch" in
  amd64 | arm64) ;;
  *) echo "base-image: unsupported platform '$platform' (allowed: linux/amd64, linux/arm64)" >&2; exit 2 ;;
esac

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
LOCAL_BASE_IMAGE=${LOCAL_BASE_IMAGE:-ray-serve-haproxy/debian-base:bookworm-slim-$arch}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PULL_TIMEOUT_S=${PULL_TIMEOUT_S:-60}

log() { printf 'base-image: %s\n' "$*" >&2; }

# Local and of the requested platform (a tag holds one platform in Docker's image store).
have_image() {
  [ "$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$1" 2>/dev/null)" = "linux/$arch" ]
}

if have_image "$BASE_IMAGE"; then
  log "using $BASE_IMAGE for $platform (already local)"
  echo "$BASE_IMAGE"
  exit 0
fi
if timeout "$PULL_TIMEOUT_S" docker pull -q --platform "$platform" "$BASE_IMAGE" >/dev/null 2>&1 \
  && have_image "$BASE_IMAGE"; then
  log "using $BASE_IMAGE for $platform (pulled)"
  echo "$BASE_IMAGE"
  exit 0
fi
if have_image "$LOCAL_BASE_IMAGE"; then
  log "$BASE_IMAGE cannot be pulled; using the locally built $LOCAL_BASE_IMAGE"
  echo "$LOCAL_BASE_IMAGE"
  exit 0
fi

log "$BASE_IMAGE cannot be pulled; building $LOCAL_BASE_IMAGE ($platform) with debootstrap from $DEBIAN_MIRROR"
command -v debootstrap >/dev/null 2>&1 || {
  apt-get update -qq || log "apt-get update reported errors; continuing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
if [ "$arch" != "$native_arch" ]; then
  bash "$here/enable-emulation.sh" "$arch"
fi
rootfs=$(mktemp -d /var/tmp/rsh-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
start=$(date +%s)
if ! debootstrap --arch="$arch" --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1; then
  tail -n 30 "$rootfs.log" >&2
  exit 1
fi

# dpkg: leave these paths out of every package installed from now on.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# Slim container image (scripts/base-image.sh): documentation, manuals and translations are not
# installed. Copyright files stay. Delete this file before installing packages to get them back.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
# apt: no binary caches, no .deb archives after installing, no translations, compressed lists.
cat >"$rootfs/etc/apt/apt.conf.d/docker-slim" <<'EOF'
// Container image (scripts/base-image.sh): every install or update leaves no cache behind.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::AutoRemove::SuggestsImportant "false";
EOF
# Services never start inside a build.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
# The suites Debian's image lists: point releases and security updates too, not just bookworm.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Current as of today, like Debian's published images: the updates debootstrap did not take.
if ! { chroot "$rootfs" apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get upgrade -y -qq; } >>"$rootfs.log" 2>&1; then
  tail -n 30 "$rootfs.log" >&2
  exit 1
fi

# What debootstrap already installed: the same paths removed (directories and the included
# files kept), plus apt's lists, caches and archives and debootstrap's logs.
for dir in usr/share/doc usr/share/groff usr/share/info usr/share/linda usr/share/lintian/overrides \
  usr/share/locale usr/share/man; do
  [ -d "$rootfs/$dir" ] || continue
  find "$rootfs/$dir" -mindepth 1 -not -type d \
    -not -path "$rootfs/usr/share/doc/*/copyright" -not -path "$rootfs/usr/share/locale/locale.alias" \
    -delete
  find "$rootfs/$dir" -mindepth 1 -depth -type d -empty -delete
done
# Nothing of this machine's identity either: Docker provides hostname and DNS per container.
rm -f "$rootfs/etc/hostname"
: >"$rootfs/etc/resolv.conf"
[ ! -f "$rootfs/etc/machine-id" ] || : >"$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/archives/partial/* \
  "$rootfs"/var/log/bootstrap.log "$rootfs"/var/log/dpkg.log "$rootfs"/var/log/apt/*

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --platform "$platform" \
  --change 'CMD ["bash"]' \
  --message "debootstrap --arch=$arch --variant=minbase bookworm $DEBIAN_MIRROR, slimmed" \
  - "$LOCAL_BASE_IMAGE" >/dev/null
log "built $LOCAL_BASE_IMAGE for $platform in $(($(date +%s) - start))s" \
  "($(docker image inspect -f '{{.Size}}' "$LOCAL_BASE_IMAGE") bytes)"
echo "$LOCAL_BASE_IMAGE"
