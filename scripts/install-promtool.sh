#!/usr/bin/env bash
# Make `promtool` (Prometheus' rule checker and rule unit-test runner) available, for the checks
# of monitoring/prometheus/ (tests/unit/test_prometheus_rules.py). Prints its path. Does nothing
# where a recent enough one is already on PATH; safe to run twice.
#
# Why trixie's: the Prometheus in the observability image is Debian 13's 2.53 (monitoring/
# prometheus/Dockerfile); the rules are tested with the same version. Debian 13 ships promtool as
# its own small package (one Go binary, needs only libc6 >= 2.34, which bookworm has). trixie is
# added to apt with a low pin (100), as scripts/bootstrap-docker.sh does, so nothing else is
# upgraded by accident.
set -euo pipefail

log() { printf 'install-promtool: %s\n' "$*" >&2; }
MIN_VERSION=${PROMTOOL_MIN_VERSION:-2.53}

recent_enough() {
  local have
  have=$(promtool --version 2>/dev/null | sed -n 's/^promtool, version \([0-9]*\.[0-9]*\).*/\1/p')
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$MIN_VERSION" "$have" | sort -V | head -n 1)" = "$MIN_VERSION" ]
}

if recent_enough; then
  command -v promtool
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "promtool >= $MIN_VERSION is missing and installing it needs root: run 'sudo bash $0'"
  exit 1
fi
sources=/etc/apt/sources.list.d/trixie.list
pin=/etc/apt/preferences.d/trixie-low-priority
[ -f "$sources" ] || echo "deb http://deb.debian.org/debian trixie main" >"$sources"
[ -f "$pin" ] || printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >"$pin"
log "installing promtool from Debian trixie"
# Unreachable third-party sources only warn; the Debian ones are what we need.
apt-get update -qq >&2 || log "apt-get update reported errors; continuing with the lists it got"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie --no-install-recommends promtool >&2
recent_enough || { log "promtool is still older than $MIN_VERSION: $(promtool --version 2>&1 | head -n 1)"; exit 1; }
log "$(promtool --version 2>&1 | head -n 1)"
command -v promtool
