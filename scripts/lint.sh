#!/usr/bin/env bash
# Run every checker the project uses, with the pinned versions from requirements/dev.txt.
# Runs them all, then lists the ones that failed; exit 1 if any did.
#   ruff (lint + format check) on all Python, mypy --strict on runtime/,
#   hadolint on Dockerfiles, shellcheck on shell scripts, yamllint on YAML,
#   promtool on the Prometheus rules and their unit tests (monitoring/prometheus/).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

venv=$(bash scripts/dev-env.sh) || exit 1
bin="$venv/bin"
failed=()

run() {
  local name=$1
  shift
  printf '== %s\n' "$name"
  if "$@"; then
    printf '   %s: ok\n' "$name"
  else
    printf '   %s: FAILED\n' "$name"
    failed+=("$name")
  fi
}

mapfile -t shell_files < <(git ls-files -co --exclude-standard '*.sh' .ci/run)
mapfile -t dockerfiles < <(git ls-files -co --exclude-standard 'Dockerfile' '*/Dockerfile' '*.Dockerfile')
mapfile -t yaml_files < <(git ls-files -co --exclude-standard '*.yaml' '*.yml')

run "ruff check" "$bin/ruff" check .
run "ruff format" "$bin/ruff" format --check --diff .
# Every relative link and anchor of the Markdown docs resolves (markdown-it-py, GitHub's anchors).
run "docs links" "$bin/python" tests/docs/links.py
run "mypy --strict runtime" "$bin/mypy" --config-file runtime/pyproject.toml runtime/src
run "hadolint" "$bin/hadolint" --config .hadolint.yaml "${dockerfiles[@]}"
run "shellcheck" "$bin/shellcheck" --external-sources "${shell_files[@]}"
run "yamllint" "$bin/yamllint" --strict -c .yamllint.yaml "${yaml_files[@]}"
# promtool: Debian trixie's, installed where missing (scripts/install-promtool.sh).
promtool_rules() {
  local promtool
  promtool=$(bash scripts/install-promtool.sh) || return 1
  "$promtool" check rules monitoring/prometheus/rules/*.yml \
    && (cd monitoring/prometheus && "$promtool" test rules tests/*.yml)
}
run "promtool rules" promtool_rules

if [ ${#failed[@]} -gt 0 ]; then
  printf 'lint: FAILED: %s\n' "${failed[*]}"
  exit 1
fi
echo "lint: all checks passed"
