#!/usr/bin/env bash
# Let this machine run programs of another CPU architecture (default arm64) through qemu user
# emulation, so that debootstrap, Docker builds and containers of that architecture work here:
# Debian's qemu-user-static and binfmt-support, binfmt_misc mounted, the qemu handler enabled.
# Where the machine is that architecture, or emulation already works, does nothing. Needs root.
#
# Usage: scripts/enable-emulation.sh [DEBIAN_ARCH]   (arm64, the default, or amd64)
#
# The handler is registered with the F (fix-binary) flag by Debian's package: the kernel opens
# qemu once, so it works inside chroots and containers that do not contain qemu themselves.
set -euo pipefail

arch=${1:-arm64}
log() { printf 'enable-emulation: %s\n' "$*" >&2; }

case "$arch" in
  arm64) qemu=aarch64 ;;
  amd64) qemu=x86_64 ;;
  *) log "unsupported architecture '$arch' (allowed: arm64, amd64)"; exit 2 ;;
esac

if [ "$(dpkg --print-architecture)" = "$arch" ]; then
  log "this machine is $arch: no emulation needed"
  exit 0
fi

binfmt=/proc/sys/fs/binfmt_misc
entry="$binfmt/qemu-$qemu"
if [ -f "$entry" ] && head -n 1 "$entry" | grep -qx enabled && grep -q '^flags: .*F' "$entry"; then
  log "qemu-$qemu is registered (flags: $(sed -n 's/^flags: //p' "$entry")); nothing to do"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "need root to install qemu-user-static and register it with binfmt_misc"
  exit 1
fi

if [ ! -x "/usr/libexec/qemu-binfmt/$qemu-binfmt-P" ] || ! command -v update-binfmts >/dev/null; then
  log "installing qemu-user-static and binfmt-support from Debian"
  apt-get update -qq || log "apt-get update reported errors; continuing with the lists it got"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-user-static binfmt-support >/dev/null
fi
# No systemd here to mount it at boot.
if [ ! -f "$binfmt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt"
fi
update-binfmts --enable "qemu-$qemu" >/dev/null 2>&1 || update-binfmts --import "qemu-$qemu"
if ! head -n 1 "$entry" 2>/dev/null | grep -qx enabled; then
  log "qemu-$qemu is not enabled in $binfmt after registration"
  exit 1
fi
log "qemu-$qemu registered: $(sed -n 's/^flags: //p' "$entry" | tr -d '\n') flags, interpreter $(sed -n 's/^interpreter //p' "$entry")"
