#!/usr/bin/env bash
# Make `docker`, `docker buildx` and `docker compose` work on a Debian 12 host that
# has none of them running. Does nothing where they already work; safe to run twice.
#
# Why trixie: bookworm's docker.io 20.10 embeds a BuildKit that refuses named build
# contexts and Dockerfile heredocs. Debian 13's engine, buildx and compose do not.
# trixie is added with a low pin (100) so nothing else is upgraded by accident.
set -euo pipefail

log() { printf 'bootstrap-docker: %s\n' "$*" >&2; }

# Open files for dockerd and containerd, inherited by Docker's userland port proxy (docker-proxy,
# one per published port: 6 descriptors per client connection) and by containers without their
# own `ulimits`. Started from a shell they get its limit (20000 here): docker-proxy then ran out
# at about 3,400 client connections, exited, and left the published port dead until the
# container was restarted (docs/edge-security.md). systemd's docker.service gives 1048576.
DOCKERD_NOFILE=${DOCKERD_NOFILE:-1048576}
# Whether the engine this script starts runs that proxy at all. `false` (the default here):
# published ports are forwarded by the kernel (iptables DNAT; Docker turns on route_localnet for
# 127.0.0.1), so no process can run out of descriptors and take a port down, whatever the
# limits, and the entry sees the address a connection came from. `true`: Docker's default.
# An engine that is already running keeps its own setting (scripts/engine-limits.sh reports it).
DOCKERD_USERLAND_PROXY=${DOCKERD_USERLAND_PROXY:-false}
case "$DOCKERD_USERLAND_PROXY" in
  true | false) ;;
  *)
    log "DOCKERD_USERLAND_PROXY=$DOCKERD_USERLAND_PROXY: allowed values are true and false"
    exit 2
    ;;
esac

engine_ok() { docker info >/dev/null 2>&1; }
plugins_ok() { docker buildx version >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }

# An engine already running with fewer open files gets its limit raised in place (prlimit):
# port proxies and containers started from now on inherit it; running ones keep theirs until
# their container is recreated or restarted.
raise_engine_nofile() {
  local name pid current
  command -v prlimit >/dev/null 2>&1 || { log "no prlimit; open-files limit of the engine unchanged"; return 0; }
  for name in dockerd containerd; do
    for pid in $(pgrep -x "$name" || true); do
      current=$(prlimit --pid "$pid" --nofile --noheadings --output HARD 2>/dev/null || echo unknown)
      if [ "$current" != unlimited ] && [ "$current" != unknown ] && [ "$current" -lt "$DOCKERD_NOFILE" ]; then
        if prlimit --pid "$pid" --nofile="$DOCKERD_NOFILE:$DOCKERD_NOFILE" 2>/dev/null; then
          log "raised $name (pid $pid) open files from $current to $DOCKERD_NOFILE"
        else
          if [ "$name" = dockerd ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--userland-proxy=false'; then
            log "could not raise $name (pid $pid) open files from $current (needs CAP_SYS_RESOURCE); it runs no port proxy, so published ports do not depend on it"
          else
            log "WARNING: could not raise $name (pid $pid) open files from $current (needs root with CAP_SYS_RESOURCE); scripts/engine-limits.sh says what that allows"
          fi
        fi
      fi
    done
  done
}

if engine_ok && plugins_ok; then
  if [ "$(id -u)" -eq 0 ]; then raise_engine_nofile; fi
  log "docker engine, buildx and compose already work; nothing to do"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "need root to install and start the engine (run with sudo)"
  exit 1
fi

install_packages() {
  local sources=/etc/apt/sources.list.d/trixie.list pin=/etc/apt/preferences.d/trixie-low-priority
  if [ ! -f "$sources" ]; then
    echo "deb http://deb.debian.org/debian trixie main" >"$sources"
  fi
  if [ ! -f "$pin" ]; then
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >"$pin"
  fi
  # Unreachable third-party sources only warn; the Debian ones are what we need.
  apt-get update -qq || log "apt-get update reported errors; continuing with the lists it got"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie --no-install-recommends \
    docker.io docker-buildx docker-compose iptables >/dev/null
}

# The Debian packages put the CLI plugins here; a client elsewhere on PATH
# (for example /usr/local/bin/docker) must find them too.
link_plugins() {
  local dir=/usr/local/lib/docker/cli-plugins plugin
  mkdir -p "$dir"
  for plugin in docker-buildx docker-compose; do
    if [ -x "/usr/libexec/docker/cli-plugins/$plugin" ] && [ ! -e "$dir/$plugin" ]; then
      ln -s "/usr/libexec/docker/cli-plugins/$plugin" "$dir/$plugin"
    fi
  done
}

start_engine() {
  local logfile=/var/log/dockerd.log i
  if ! pgrep -x dockerd >/dev/null; then
    log "starting dockerd (log: $logfile)"
    # Raising the hard limit needs CAP_SYS_RESOURCE; without it dockerd starts with this shell's.
    if (ulimit -n "$DOCKERD_NOFILE") 2>/dev/null; then
      log "dockerd open files: $DOCKERD_NOFILE (DOCKERD_NOFILE)"
    else
      log "WARNING: cannot raise open files to $DOCKERD_NOFILE here (no CAP_SYS_RESOURCE?); dockerd gets $(ulimit -Hn) (docs/edge-security.md)"
    fi
    log "dockerd userland-proxy: $DOCKERD_USERLAND_PROXY (DOCKERD_USERLAND_PROXY)"
    (
      ulimit -n "$DOCKERD_NOFILE" 2>/dev/null || true
      exec nohup dockerd --userland-proxy="$DOCKERD_USERLAND_PROXY"
    ) >"$logfile" 2>&1 &
  fi
  for i in $(seq 1 60); do
    if engine_ok; then
      log "docker engine is up after ${i}s"
      return 0
    fi
    sleep 1
  done
  log "dockerd did not answer within 60s; last lines of $logfile:"
  tail -n 20 "$logfile" >&2
  return 1
}

if ! command -v dockerd >/dev/null 2>&1 || ! plugins_ok; then
  log "installing docker.io, docker-buildx and docker-compose from Debian trixie"
  install_packages
fi
link_plugins
engine_ok || start_engine
raise_engine_nofile
plugins_ok || { log "buildx or compose plugin still missing"; exit 1; }
log "$(docker version --format 'engine {{.Server.Version}}'), $(docker buildx version), $(docker compose version)"
