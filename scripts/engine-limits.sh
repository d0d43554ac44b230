#!/usr/bin/env bash
# Say what the Docker engine's limits allow a published port, from the host (docs/edge-security.md).
#
# With Docker's userland proxy (the default), every published port is a `docker-proxy` process
# that holds 6 file descriptors per client connection and inherits dockerd's open-files limit.
# When it runs out it exits, and the port stays dead until its container is restarted: at 20000
# open files that took about 3,400 connections. With `userland-proxy: false` the kernel forwards
# published ports (iptables), and no such process can die.
#
# Usage: scripts/engine-limits.sh [--strict]   (--strict: exit 1 when a flood can kill a port)
# Env:   RSH_MIN_PROXY_CONNECTIONS  connections a port proxy must hold (default 20000)
set -euo pipefail

log() { printf 'engine-limits: %s\n' "$*" >&2; }

strict=0
[ "${1:-}" = "--strict" ] && strict=1
want=${RSH_MIN_PROXY_CONNECTIONS:-20000}
per_connection=6

pid=$(pgrep -xo dockerd || true)
if [ -z "$pid" ]; then
  log "no dockerd visible from here (remote engine, Docker Desktop, rootless?): cannot read its"
  log "limits. Make sure its open-files limit is high (systemd: LimitNOFILE=infinity) or that it"
  log "runs with userland-proxy false; see docs/edge-security.md"
  exit 0
fi

userland=true
if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--userland-proxy=false'; then
  userland=false
elif [ -r /etc/docker/daemon.json ] && grep -Eq '"userland-proxy"[[:space:]]*:[[:space:]]*false' /etc/docker/daemon.json; then
  userland=false
fi
if [ "$userland" = false ]; then
  log "dockerd (pid $pid) runs without the userland proxy: published ports are kernel-forwarded, no port proxy to exhaust"
  exit 0
fi

nofile=$(awk '/^Max open files/ {print $5}' "/proc/$pid/limits" 2>/dev/null || echo unknown)
if [ "$nofile" = unlimited ]; then
  log "dockerd (pid $pid) open files: unlimited; Docker's port proxy is bounded by the kernel only"
  exit 0
fi
if [ "$nofile" = unknown ]; then
  log "cannot read /proc/$pid/limits (not root?); see docs/edge-security.md"
  exit 0
fi
holds=$(((nofile - 100) / per_connection))
if [ "$holds" -ge "$want" ]; then
  log "dockerd (pid $pid) open files $nofile: Docker's port proxy holds about $holds connections per published port"
  exit 0
fi
log "WARNING: dockerd (pid $pid) open files $nofile: Docker's port proxy holds only about $holds"
log "  connections per published port; a flood above that kills the port until the container is"
log "  restarted. Raise dockerd's limit (scripts/bootstrap-docker.sh does for the engine it starts;"
log "  systemd: LimitNOFILE=infinity), or set \"userland-proxy\": false in /etc/docker/daemon.json."
[ "$strict" = 1 ] && exit 1
exit 0
