"""The Grafana dashboard (monitoring/grafana/ray-serve-haproxy.json) and its provisioning files.

Grafana does not run here (no package in the registries this project builds from): what can be
checked without it is checked here. Every panel has queries, on the dashboard's data source
variable, and every query is valid PromQL (promtool parses each as a recording rule). That each
returns data on a real cluster is tests/integration/test_8_monitoring.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "ray-serve-haproxy.json"
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "5s"}
# What the issue asks the dashboard to show, as words in panel titles.
TOPICS = (
    "Requests",
    "5xx by origin",
    "latency",
    "Nodes in the entry",
    "Replicas",
    "reloads",
    "drain",
)


def panels() -> list[dict[str, object]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ray-serve-haproxy"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), ids
    titles = " | ".join(str(p["title"]) for p in panels())
    for topic in TOPICS:
        assert topic.lower() in titles.lower(), f"no panel about {topic!r}: {titles}"
    for panel in panels():
        targets = panel["targets"]
        assert isinstance(targets, list) and targets, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in targets:
            assert target["expr"].strip(), panel["title"]


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: run `sudo bash scripts/install-promtool.sh`")
    rules = []
    for n, panel in enumerate(panels()):
        for target in panel["targets"]:  # type: ignore[attr-defined]
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: a variable Grafana would fill: {expr}"
            rules.append({"record": f"dashboard:panel{n}:{target['refId']}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", "--lint=none", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # And the check bites: a broken query fails it.
    rules[0]["expr"] = "sum(rate(haproxy_frontend_http_requests_total[1m]"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    broken = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert broken.returncode != 0, broken.stdout


def test_provisioning_files() -> None:
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    assert source["datasources"][0]["type"] == "prometheus"
    assert source["datasources"][0]["url"] == "http://prometheus:9090"  # the compose service
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "ray-serve-haproxy.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
