#!/usr/bin/env bash
# The project's test command (README "Quick start", docs/testing.md): brings up Docker, builds
# the image, prepares the dev venv, then runs every layer: unit, build checks, image, cluster.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap-docker.sh
# The image and the Prometheus of the observability profile (tests/integration/test_8_monitoring.py).
bash scripts/build-image.sh default prometheus
venv=$(bash scripts/dev-env.sh)
"$venv/bin/python" -m pytest "$@"
