"""The Prometheus rules in monitoring/prometheus/, tested like code with the real `promtool`.

`promtool check rules` and `promtool test rules` pass; every alert has a unit test where it
fires and one where it stays silent; every alert carries a summary and a runbook section that
exists in docs/monitoring.md; and the checks can fail: a syntax error and a changed threshold
are each caught. promtool comes from scripts/install-promtool.sh (run by scripts/dev-env.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "monitoring" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
DOCS = REPO / "docs" / "monitoring.md"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run `sudo bash scripts/install-promtool.sh`")
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"alert {rule['alert']} declared twice"
                    found[rule["alert"]] = rule
    return found


def test_rule_files_exist() -> None:
    assert RULE_FILES and TEST_FILES
    assert len(alerts()) >= 10, sorted(alerts())


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", *(str(p) for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", *(str(p) for p in TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test") or []:
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = set(alerts())
    assert names - firing == set(), f"alerts with no test where they fire: {names - firing}"
    assert names - silent == set(), f"alerts with no test where they stay silent: {names - silent}"
    assert (firing | silent) - names == set(), (
        f"tests of unknown alerts: {(firing | silent) - names}"
    )


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_alert_has_a_summary_a_severity_and_a_runbook_section() -> None:
    anchors = _anchors(DOCS.read_text())
    for name, rule in alerts().items():
        annotations = rule.get("annotations") or {}
        assert annotations.get("summary"), f"{name}: no summary"
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        url = annotations.get("runbook_url", "")
        assert url == f"docs/monitoring.md#{name.lower()}", f"{name}: runbook_url {url!r}"
        assert name.lower() in anchors, f"{name}: no section `### {name}` in docs/monitoring.md"


def _copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS / "rules", copy / "rules")
    shutil.copytree(PROMETHEUS / "tests", copy / "tests")
    return copy


def test_a_broken_rule_fails_the_check(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    rules = copy / "rules" / "ray-serve-haproxy.yml"
    text = rules.read_text()
    broken = text.replace("expr: rsh:entry_nodes_up:max == 0", "expr: rsh:entry_nodes_up:max == (")
    assert broken != text
    rules.write_text(broken)
    result = run_promtool("check", "rules", str(rules), cwd=copy)
    assert result.returncode != 0, result.stdout
    assert "rsh:entry_nodes_up:max == (" in result.stdout + result.stderr or "parse error" in (
        result.stdout + result.stderr
    )


def test_a_changed_threshold_fails_the_unit_tests(tmp_path: Path) -> None:
    # The tests pin behaviour, not just syntax: raising the maxconn threshold from 80 % to 95 %
    # leaves the rules valid but makes the "fires at 87.5 %" case fail. Only that alert's tests
    # run (promtool runs a whole file; the full file takes about 9 s).
    copy = _copy_tree(tmp_path)
    rules = copy / "rules" / "ray-serve-haproxy.yml"
    text = rules.read_text()
    changed = text.replace(
        "expr: rsh:haproxy_connections:ratio > 0.8", "expr: rsh:haproxy_connections:ratio > 0.95"
    )
    assert changed != text
    rules.write_text(changed)
    assert run_promtool("check", "rules", str(rules), cwd=copy).returncode == 0
    suite = yaml.safe_load((PROMETHEUS / "tests" / "alerts.yml").read_text())
    suite["tests"] = [
        test
        for test in suite["tests"]
        if any(
            case["alertname"] == "RayServeHAProxyConnectionsNearMaxconn"
            for case in test.get("alert_rule_test") or []
        )
    ]
    assert suite["tests"], "the maxconn alert's tests"
    only = copy / "tests" / "maxconn.yml"
    only.write_text(yaml.safe_dump(suite))
    # Unchanged rules pass these tests, changed ones fail them.
    original = copy / "rules" / "original.yml"
    original.write_text(text)
    suite["rule_files"] = ["../rules/original.yml"]
    (copy / "tests" / "maxconn-original.yml").write_text(yaml.safe_dump(suite))
    assert run_promtool("test", "rules", "tests/maxconn-original.yml", cwd=copy).returncode == 0
    result = run_promtool("test", "rules", "tests/maxconn.yml", cwd=copy)
    assert result.returncode != 0, result.stdout
    assert "RayServeHAProxyConnectionsNearMaxconn" in result.stdout + result.stderr


def test_kuberay_prometheusrule_is_generated_from_the_rule_files() -> None:
    result = subprocess.run(
        ["python3", str(REPO / "scripts" / "prometheus-rule.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((REPO / "examples" / "kuberay" / "prometheusrule.yaml").read_text())
    groups = [g for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]]
    assert manifest["spec"]["groups"] == groups
