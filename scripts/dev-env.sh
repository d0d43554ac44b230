#!/usr/bin/env bash
# Create (or reuse) the development venv .cache/dev-venv with requirements/dev.txt, the
# hash-pinned requirements/kuberay-schemas.lock (schema validation of the KubeRay manifests) and
# the runtime installed editable, and promtool (scripts/install-promtool.sh). Prints the venv's
# path. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DEV_VENV:-$PWD/.cache/dev-venv}
stamp="$venv/.installed"
want="$(cat requirements/dev.txt requirements/kuberay-schemas.lock runtime/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements/dev.txt >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes \
    -r requirements/kuberay-schemas.lock >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -e runtime >&2
  echo "$want" >"$stamp"
fi
# promtool for tests/unit/test_prometheus_rules.py (needs root to install; that test says so).
bash scripts/install-promtool.sh >/dev/null \
  || echo "dev-env: promtool missing: run 'sudo bash scripts/install-promtool.sh'" >&2
echo "$venv"
