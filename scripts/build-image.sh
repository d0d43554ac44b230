#!/usr/bin/env bash
# Build the image with `docker buildx bake`, taking the online path where it can
# and the offline path where it must, and say which it took.
#
#   online : BASE_IMAGE pullable or local, HAProxy tarball downloaded from haproxy.org
#   offline: BASE_IMAGE built locally (scripts/base-image.sh) and/or the HAProxy
#            tarball fetched from Debian's source archive and handed to the build as
#            the named context `haproxy-src`. Where the requested version cannot be
#            had at all, HAPROXY_FALLBACK_VERSION (3.0.11) is built instead. 3.0.11 is BELOW
#            the security floor (haproxy/security-floor.txt): the fallback passes the explicit
#            allowance HAPROXY_ALLOW_BELOW_FLOOR=1, says so in its log, and the image reports
#            the missing fixes (label, bill of materials, `check`, `status`).
# Both verify the tarball against haproxy/checksums.txt and the version against its branch's
# security floor inside the build. docs/haproxy-patch-level.md
#
# Target "release" (linux/amd64 + linux/arm64): BuildKit's docker driver, the one a plain engine
# has, keeps one platform per tag, so there each platform is built by itself from the same
# Dockerfile, on its own base (scripts/base-image.sh PLATFORM), and loaded as IMAGE:TAG-<arch>.
# A platform other than this machine's runs under qemu emulation (scripts/enable-emulation.sh).
# With a multi-platform builder (docker-container driver) and a registry, use
# `docker buildx bake release --push` instead.
#
# Usage: scripts/build-image.sh [bake target ...]   (default target: default)
# Env:   HAPROXY_VERSION, RAY_VERSION, BASE_IMAGE, IMAGE, TAG, CA_BUNDLE (see docker-bake.hcl)
#        HAPROXY_ALLOW_BELOW_FLOOR=1   build a requested version below its security floor
#        HAPROXY_FALLBACK_VERSION      what an offline machine builds (default 3.0.11)
#        RELEASE_PLATFORMS   platforms of "release" here (default: linux/amd64 linux/arm64)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'build-image: %s\n' "$*" >&2; }

HAPROXY_VERSION=${HAPROXY_VERSION:-2.8.26}
HAPROXY_FALLBACK_VERSION=${HAPROXY_FALLBACK_VERSION:-3.0.11}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(default)

bash scripts/bootstrap-docker.sh

requested_base=${BASE_IMAGE:-debian:bookworm-slim}
BASE_IMAGE=$(bash scripts/base-image.sh)
export BASE_IMAGE

upstream_url="https://www.haproxy.org/download/${HAPROXY_VERSION%.*}/src/haproxy-${HAPROXY_VERSION}.tar.gz"
if curl -fsI --connect-timeout 5 --max-time 15 "$upstream_url" >/dev/null 2>&1; then
  path="online: HAProxy ${HAPROXY_VERSION} downloaded from haproxy.org inside the build"
  unset HAPROXY_SRC_DIR
else
  src_dir="$PWD/.cache/haproxy-src"
  if bash scripts/fetch-haproxy-source.sh "$HAPROXY_VERSION" "$src_dir" 2>/dev/null; then
    path="offline: HAProxy ${HAPROXY_VERSION} from Debian's source archive, as build context haproxy-src"
  else
    log "HAProxy ${HAPROXY_VERSION} source cannot be fetched here; falling back to ${HAPROXY_FALLBACK_VERSION}"
    bash scripts/fetch-haproxy-source.sh "$HAPROXY_FALLBACK_VERSION" "$src_dir"
    HAPROXY_VERSION=$HAPROXY_FALLBACK_VERSION
    path="offline: HAProxy ${HAPROXY_VERSION} (fallback) from Debian's source archive, as build context haproxy-src"
    fallback=true
  fi
  export HAPROXY_SRC_DIR=$src_dir
fi
export HAPROXY_VERSION

# The security floor: the build refuses a release that lacks known fixes. The offline fallback
# is such a release on machines that can fetch nothing newer; it is built with the explicit
# allowance, and the image says so. A requested version is allowed only when the caller says so.
floor=$(sh haproxy/security-floor.sh floor "$HAPROXY_VERSION" 2>/dev/null || true)
missing=$(sh haproxy/security-floor.sh missing "$HAPROXY_VERSION" 2>/dev/null || true)
if [ -n "$missing" ]; then
  if ${fallback:-false}; then
    export HAPROXY_ALLOW_BELOW_FLOOR=1
    log "WARNING: HAProxy ${HAPROXY_VERSION} IS BELOW THE SECURITY FLOOR ${floor} of its branch;"
    log "WARNING: built anyway with HAPROXY_ALLOW_BELOW_FLOOR=1 because no newer source can be fetched here."
    log "WARNING: it lacks: ${missing//,/, }"
    log "WARNING: the image says so (label io.ray-serve-haproxy.haproxy.below-security-floor, SBOM, check, status)."
    log "WARNING: build ${floor} or newer online for production: docs/haproxy-patch-level.md"
  elif [ "${HAPROXY_ALLOW_BELOW_FLOOR:-0}" = 1 ]; then
    log "WARNING: HAProxy ${HAPROXY_VERSION} is below the security floor ${floor}; allowed by HAPROXY_ALLOW_BELOW_FLOOR=1. It lacks: ${missing//,/, }"
  fi
  # The label names exactly what is missing; the build checks it against its own floor table.
  if [ "${HAPROXY_ALLOW_BELOW_FLOOR:-0}" = 1 ]; then
    export HAPROXY_BELOW_FLOOR_MISSING=$missing
  fi
fi

# A TLS-inspecting proxy between the build and PyPI needs its CA: hand pip the
# host's bundle as a build secret (never stored in a layer). CA_BUNDLE="" disables.
if [ -z "${CA_BUNDLE+set}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi

log "path taken: $path"
log "base image: $BASE_IMAGE; Ray ${RAY_VERSION:-2.60.0}; CA bundle secret: ${CA_BUNDLE:-none}; targets: ${targets[*]}"
if [ -n "$missing" ]; then below="YES (HAPROXY_ALLOW_BELOW_FLOOR=${HAPROXY_ALLOW_BELOW_FLOOR:-0})"; else below=no; fi
log "HAProxy ${HAPROXY_VERSION}: security floor ${floor:-unknown}; below it: $below"
start=$(date +%s)
others=()
release=false
for target in "${targets[@]}"; do
  if [ "$target" = release ]; then release=true; else others+=("$target"); fi
done
if [ ${#others[@]} -gt 0 ]; then
  docker buildx bake --progress "${BUILD_PROGRESS:-plain}" "${others[@]}"
fi
if $release; then
  driver=$(docker buildx inspect | sed -n 's/^Driver: *//p' | head -n 1)
  if [ "$driver" != docker ]; then
    docker buildx bake --progress "${BUILD_PROGRESS:-plain}" release
  else
    native=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    for platform in ${RELEASE_PLATFORMS:-linux/amd64 linux/arm64}; do
      arch=${platform#linux/}
      [ "$arch" = "$native" ] || bash scripts/enable-emulation.sh "$arch"
      base=$(BASE_IMAGE=$requested_base bash scripts/base-image.sh "$platform")
      tag="${IMAGE:-ray-serve-haproxy}:${TAG:-latest}-$arch"
      log "release: $platform on $base -> $tag"
      platform_start=$(date +%s)
      BASE_IMAGE=$base docker buildx bake --progress "${BUILD_PROGRESS:-plain}" release \
        --set "release.platform=$platform" --set "release.tags=$tag"
      log "release: $tag built in $(($(date +%s) - platform_start))s"
    done
  fi
fi
log "built in $(( $(date +%s) - start ))s (${path%%:*} path)"
