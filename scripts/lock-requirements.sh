#!/usr/bin/env bash
# Regenerate the hash-pinned locks from their .in files, with hashes for every distribution
# file, so the same lock serves amd64 and arm64 builds:
#   requirements/image.lock       the image's venv (ray[serve] and the runtime's dependencies)
#   requirements/grpc-tools.lock  the build-only grpcio-tools of the gRPC demo's codegen stage
# Run with the Python minor version of the image (3.11, Debian bookworm).
# Usage: scripts/lock-requirements.sh [image|grpc-tools ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LOCK_VENV:-.cache/lock-venv}
[ -x "$venv/bin/pip-compile" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pip-tools==7.6.2; }
locks=("$@")
[ ${#locks[@]} -gt 0 ] || locks=(image grpc-tools)
for lock in "${locks[@]}"; do
  [ -f "requirements/$lock.in" ] || { echo "lock-requirements: no requirements/$lock.in" >&2; exit 2; }
  # Host pip configuration (constraints, local indexes) must not leak into the lock.
  PIP_CONFIG_FILE=/dev/null "$venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
    --strip-extras --no-emit-index-url --no-emit-find-links --output-file "requirements/$lock.lock" "requirements/$lock.in"
done
