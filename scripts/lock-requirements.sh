#!/usr/bin/env bash
# Regenerate requirements/image.lock from requirements/image.in with hashes for
# every distribution file, so the same lock serves amd64 and arm64 builds.
# Run with the Python minor version of the image (3.11, Debian bookworm).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LOCK_VENV:-.cache/lock-venv}
[ -x "$venv/bin/pip-compile" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pip-tools==7.6.2; }
# Host pip configuration (constraints, local indexes) must not leak into the lock.
PIP_CONFIG_FILE=/dev/null "$venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
  --strip-extras --no-emit-index-url --output-file requirements/image.lock requirements/image.in
