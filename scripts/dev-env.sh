#!/usr/bin/env bash
# Create (or reuse) the development venv .cache/dev-venv with requirements/dev.txt, the
# hash-pinned requirements/kuberay-schemas.lock (schema validation of the KubeRay manifests) and
# the runtime installed editable, and promtool (scripts/install-promtool.sh). Prints the venv's
# path. Safe to run again.
#
# Installing those 560 MB of packages takes 70-100 s on 2 cores, in every fresh clone (CI's
# too). So the packages are installed once per requirements and Python version into a prepared
# venv in the user's cache (RSH_DEV_CACHE, default ~/.cache/ray-serve-haproxy; empty: no cache),
# and each clone copies it and installs only its own runtime (editable) into the copy.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DEV_VENV:-$PWD/.cache/dev-venv}
stamp="$venv/.installed"
want="$(cat requirements/dev.txt requirements/kuberay-schemas.lock runtime/pyproject.toml \
  | sha256sum | cut -d' ' -f1)"
cache=${RSH_DEV_CACHE-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ray-serve-haproxy}

pip_install() { "$1/bin/pip" install -q --disable-pip-version-check "${@:2}" >&2; }

# Written with && throughout: these also run where `set -e` does not apply (conditions).
# A venv with every requirement and the runtime (editable, from this clone) in $1.
install_all() {
  python3 -m venv --prompt dev-venv "$1" \
    && pip_install "$1" -r requirements/dev.txt \
    && pip_install "$1" --require-hashes -r requirements/kuberay-schemas.lock \
    && pip_install "$1" -e runtime
}

# A venv's scripts name its path (#! lines, activate, pyvenv.cfg): from $2 to $1.
retarget() {
  local file
  for file in "$1"/bin/* "$1/pyvenv.cfg"; do
    if [ -f "$file" ] && [ ! -L "$file" ] && grep -Iq "$2" "$file"; then
      sed -i "s|$2|$1|g" "$file" || return 1
    fi
  done
}

# The cache's prepared venv for these requirements, built if missing; prints its path.
prepared() {
  local key template
  key="$(printf '%s %s' "$want" "$(python3 -VV)" | sha256sum | cut -c1-16)"
  template="$cache/dev-venv-$key"
  mkdir -p "$cache" || return 1
  (
    flock 9 || exit 1
    if [ ! -f "$template/.installed" ]; then
      echo "dev-env: preparing $template (once per requirements)" >&2
      # .installed, written last, marks it complete (the lock keeps other builders out).
      rm -rf "$template" \
        && install_all "$template" \
        && echo "$want" >"$template/.installed" \
        || exit 1
    fi
    # Used now; prepared venvs of other requirements go after two weeks unused.
    touch "$template"
    find "$cache" -maxdepth 1 -name 'dev-venv-*' -mtime +14 -exec rm -rf {} + || true
  ) 9>"$cache/.lock" || return 1
  echo "$template"
}

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  # The copy's runtime is the one of the clone that prepared the cache: this clone's instead.
  if [ -n "$cache" ] && template=$(prepared) && cp -a "$template" "$venv" \
    && retarget "$venv" "$template" && pip_install "$venv" --no-deps -e runtime; then
    echo "dev-env: $venv copied from $template" >&2
  else
    echo "dev-env: no prepared venv (${cache:-cache disabled}); installing into $venv" >&2
    rm -rf "$venv"
    install_all "$venv" || exit 1
  fi
  echo "$want" >"$stamp"
fi
# promtool for tests/unit/test_prometheus_rules.py (needs root to install; that test says so).
bash scripts/install-promtool.sh >/dev/null \
  || echo "dev-env: promtool missing: run 'sudo bash scripts/install-promtool.sh'" >&2
echo "$venv"
