#!/usr/bin/env bash
# Bring up the local cluster (compose.yaml) from a fresh clone: make sure Docker runs, build the
# image if it does not exist yet, then `docker compose up -d --wait`, which returns once the
# demo apps answer through the entry. Prints what answers where.
# Ray's token authentication is on: the first run creates the cluster's token in .secrets/
# (scripts/ray-token.sh; git-ignored, mode 0700), which compose hands to every node as a secret.
#
# Usage: scripts/cluster-up.sh [--build] [--tls] [extra `docker compose up` args, e.g. --scale worker=3]
#   --build   rebuild the image even when it exists (scripts/build-image.sh; cached, quick)
#   --tls     (or RSH_TLS=1) also HTTPS on 127.0.0.1:8443 and gRPC over TLS on 127.0.0.1:9443
#             (compose.tls.yaml), with a local CA and a certificate for localhost/127.0.0.1
#             made in .secrets/tls/ (scripts/tls-local.sh); plain HTTP stays on :8000
# Env: RSH_IMAGE (default ray-serve-haproxy:latest), RSH_HTTP_HOST_PORT (8000),
#      RSH_DASHBOARD_HOST_PORT (8265), RSH_METRICS_HOST_PORT (9101), RSH_GRPC_HOST_PORT (9000),
#      RSH_WAIT_TIMEOUT (600 s), COMPOSE_PROFILES=observability (also Prometheus,
#      docs/monitoring.md; RSH_PROMETHEUS_HOST_PORT 9090).
# Stop with: docker compose down
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'cluster-up: %s\n' "$*" >&2; }

build=0
tls=${RSH_TLS:-0}
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=1 ;;
    --tls) tls=1 ;;
    *) break ;;
  esac
  shift
done
image=${RSH_IMAGE:-ray-serve-haproxy:latest}
export RSH_IMAGE=$image

bash scripts/bootstrap-docker.sh
# What the engine's limits allow a published port (a warning when a flood could kill it).
bash scripts/engine-limits.sh || true

if [ "$image" != "ray-serve-haproxy:latest" ]; then
  # Someone else's image (RSH_IMAGE): use it as it is, never build over it.
  docker image inspect "$image" >/dev/null 2>&1 || { log "image $image (RSH_IMAGE) not found"; exit 1; }
elif [ "$build" = 1 ] || ! docker image inspect "$image" >/dev/null 2>&1; then
  log "building $image (scripts/build-image.sh)"
  bash scripts/build-image.sh
fi

# With the observability profile (COMPOSE_PROFILES=observability, docs/monitoring.md), its
# Prometheus image too.
prometheus_image=${RSH_PROMETHEUS_IMAGE:-ray-serve-haproxy-prometheus:latest}
if [[ ",${COMPOSE_PROFILES:-}," == *,observability,* ]] \
  && ! docker image inspect "$prometheus_image" >/dev/null 2>&1; then
  log "building $prometheus_image (scripts/build-image.sh prometheus)"
  bash scripts/build-image.sh prometheus
fi

# The cluster's token (created once; kept across runs). Compose reads .secrets/ray_token.node.
node_token=$(bash scripts/ray-token.sh)
if [ -n "${RSH_RAY_TOKEN_FILE:-}" ] && [ "$RSH_RAY_TOKEN_FILE" != "$node_token" ]; then
  log "using RSH_RAY_TOKEN_FILE=$RSH_RAY_TOKEN_FILE for the nodes (not $node_token)"
fi

# TLS at the entry (docs/tls.md): the local CA and certificate, then compose.tls.yaml on top.
compose_files=(-f compose.yaml)
if [ "$tls" = 1 ]; then
  ca_file=$(bash scripts/tls-local.sh)
  compose_files+=(-f compose.tls.yaml)
fi

log "starting head, workers and the entry; waiting until the demo apps are served (first start: about a minute)"
start=$(date +%s)
up() { docker compose "${compose_files[@]}" up --detach --wait --wait-timeout "${RSH_WAIT_TIMEOUT:-600}" "$@"; }
not_healthy() {
  log "the cluster did not become healthy; recent logs:"
  docker compose "${compose_files[@]}" logs --tail 60 >&2 || true
  docker compose "${compose_files[@]}" ps >&2 || true
  exit 1
}
# Compose's --wait gives up on a node that turns unhealthy, though its restart policy starts it
# again: on a busy machine Ray's raylet can abort the node's start (it waits 15 s for its dashboard
# agent, docs/troubleshooting.md), and the container exits about a minute later (`ray start`'s own
# wait, then `ray stop`). So after a failed wait: give unhealthy nodes that minute, and when Docker
# restarted nodes meanwhile, wait once more.
unhealthy() { docker compose "${compose_files[@]}" ps --format '{{.Name}} {{.Health}}' | awk '$2 == "unhealthy" {print $1}'; }
restarted() {
  docker compose "${compose_files[@]}" ps -aq \
    | xargs -r docker inspect -f '{{if .RestartCount}}{{slice .Name 1}}{{end}}' | xargs
}
if ! up "$@"; then
  for _ in $(seq 45); do still=$(unhealthy); [ -z "$still" ] && break; sleep 2; done
  nodes=$(restarted)
  { [ -z "$still" ] && [ -n "$nodes" ]; } || not_healthy
  log "restarted while the cluster came up: ${nodes} (docker compose logs says why); waiting again"
  up "$@" || not_healthy
fi
log "up in $(($(date +%s) - start))s"

http=${RSH_HTTP_HOST_PORT:-8000}
dashboard=${RSH_DASHBOARD_HOST_PORT:-8265}
cat <<EOF

  Demo apps (through the entry):    curl -s http://127.0.0.1:${http}/hello
                                    curl -s http://127.0.0.1:${http}/echo -d '{"x": 1}'
  Routes / health:                  http://127.0.0.1:${http}/-/routes   http://127.0.0.1:${http}/-/healthz
  Ray dashboard:                    http://127.0.0.1:${dashboard}   (asks for the token in ${PWD}/.secrets/ray_token)
  Ray's CLI with the token:         export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=${PWD}/.secrets/ray_token
                                    ray job submit --address http://127.0.0.1:${dashboard} -- python -c 'print(1)'
                                    serve deploy --address http://127.0.0.1:${dashboard} examples/demo/serve_config.yaml
  The head's HAProxy metrics:       http://127.0.0.1:${RSH_METRICS_HOST_PORT:-9101}/metrics
  gRPC demo (app "greeter"):        127.0.0.1:${RSH_GRPC_HOST_PORT:-9000}   (docs/grpc.md)
  Prometheus (observability profile): http://127.0.0.1:${RSH_PROMETHEUS_HOST_PORT:-9090}   (docs/monitoring.md)
  The entry's view of the nodes:    docker compose exec entry ray-serve-haproxy status
  HAProxy's view of the replicas:   docker compose exec head ray-serve-haproxy status
  Access log:                       docker compose logs -f head
  Stop:                             docker compose down      (-v: also forget the cluster's state)

EOF
if [ "$tls" = 1 ]; then
  https=${RSH_HTTPS_HOST_PORT:-8443}
  cat <<EOF
  TLS at the entry (docs/tls.md), verified against the local CA ${ca_file}:
    HTTPS (HTTP/2 or 1.1 by ALPN):  curl --cacert ${ca_file} https://localhost:${https}/hello
    gRPC over TLS:                  localhost:${RSH_GRPC_TLS_HOST_PORT:-9443}   (grpc.ssl_channel_credentials(root_certificates=<that file>))
    Mutual TLS, to try:             ${ca_file%/*}/client.pem (with RSH_ENTRY_TLS_CLIENT_CA, docs/tls.md)
    Stop:                           docker compose -f compose.yaml -f compose.tls.yaml down

EOF
fi
