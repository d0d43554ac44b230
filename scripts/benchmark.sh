#!/usr/bin/env bash
# The benchmark (docs/benchmark.md): on the compose cluster, HAProxy mode vs Ray's
# Python proxy vs the replicas' own direct-ingress ports, at concurrency 1, 16, 64 and 256,
# plus the RAY_SERVE_HAPROXY_NBTHREAD variant, HAProxy in each access-log mode (CPU per
# request at c=64), and gRPC (h2load) through the same three paths at concurrency 64.
# Scores CPU per request on each path's entry node and the latency added at c=1. Leaves
# benchmarks/results/latest.json (schema: benchmarks/results.schema.json), latest.md and
# latest.png, and prints the summary. About 30 minutes on 2 cores.
#
# Needs Docker (scripts/bootstrap-docker.sh) and the image (built here if missing); reads
# the containers' cgroups and the host's /proc, so it runs beside the Docker engine (root).
# Arguments go to the benchmarks package (`python -m benchmarks --help`), e.g.
#   bash scripts/benchmark.sh --levels 64 --rounds 1 --phases haproxy --name quick  # quick look
#   bash scripts/benchmark.sh --render-only benchmarks/results/latest.json
# Env: RSH_IMAGE (default ray-serve-haproxy:latest), RSH_BENCH_PROJECT (compose
# project name, default rshbench; no host ports are published).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'benchmark: %s\n' "$*" >&2; }

image=${RSH_IMAGE:-ray-serve-haproxy:latest}
loadgen_image=ray-serve-haproxy-loadgen:latest

bash scripts/bootstrap-docker.sh

if ! docker image inspect "$image" >/dev/null 2>&1; then
  log "image $image not found: building it first (bash scripts/build-image.sh)"
  bash scripts/build-image.sh
fi

base_image=$(bash scripts/base-image.sh)
log "building the load generator $loadgen_image (wrk and h2load from Debian) on $base_image"
docker build -q --build-arg BASE_IMAGE="$base_image" -t "$loadgen_image" benchmarks/loadgen >/dev/null

# Ray's token authentication is on: the nodes read the cluster's token as compose's secret
# (.secrets/ray_token.node, created once, like cluster-up does; RSH_RAY_TOKEN_FILE overrides).
RSH_IMAGE=$image bash scripts/ray-token.sh >/dev/null

venv=$(bash scripts/dev-env.sh)
RSH_IMAGE=$image exec "$venv/bin/python" -m benchmarks "$@"
