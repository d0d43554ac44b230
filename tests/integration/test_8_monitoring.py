"""The observability profile on the session's cluster: the real Prometheus of compose's
`observability` profile (monitoring/prometheus/) started on the same project, scraping the entry,
every node's HAProxy and Ray's metrics, found by DNS.

- every part is scraped (a target per container and role, all up);
- every query of the Grafana dashboard (monitoring/grafana/ray-serve-haproxy.json) returns data
  while the cluster is under load, so a renamed metric cannot silently blank a panel;
- `docker kill` of a worker the entry routes to: RayServeHAProxyEntryNodeOut fires in the real
  Prometheus within FIRE_BOUND_S, and resolves within RESOLVE_BOUND_S after `docker compose up`
  brought the worker back.

Last in the session: it kills a worker and starts it again.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from .cluster import APPS, Cluster, note, wait_for
from .load import Load, summarize

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "monitoring" / "grafana" / "ray-serve-haproxy.json"
NODE_OUT = "RayServeHAProxyEntryNodeOut"
# Prometheus scrapes and evaluates every 5 s; the entry takes a node out after 2 failed checks
# at 1 s; the alert holds for 10 s. Measured on this machine: see the test's printed numbers.
FIRE_BOUND_S = 60
# From `docker compose up` returning (the worker healthy, i.e. Ray running) until resolved: Serve
# puts the replicas it could not place back on the worker, Ray starts its HAProxy, the entry
# checks it twice, Prometheus scrapes and evaluates.
RESOLVE_BOUND_S = 150
# Grafana's interval variables, as Grafana would fill them for a 5 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "5s"}


def prometheus_image(image: str) -> str:
    """ray-serve-haproxy:TAG -> ray-serve-haproxy-prometheus:TAG (docker-bake.hcl's naming)."""
    name, _, tag = image.rpartition(":")
    return f"{name}-prometheus:{tag}" if name else f"{image}-prometheus:latest"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body.get("status") == "success", (
            f"query {expr!r}: {response.status_code} {json.dumps(body)[:500]}"
        )
        return list(body["data"]["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/alerts", timeout=10)
        response.raise_for_status()
        return [a for a in response.json()["data"]["alerts"] if a["labels"]["alertname"] == name]

    def firing(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts(name) if a["state"] == "firing"]


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, image: str, host_port: Any) -> Iterator[Prometheus]:
    """Prometheus of the `observability` profile, on the session cluster's project."""
    project = cluster.project
    port = host_port()
    saved = dict(project.env)
    project.env.update(
        {
            "RSH_PROMETHEUS_HOST_PORT": str(port),
            "RSH_PROMETHEUS_IMAGE": prometheus_image(image),
            "COMPOSE_PROFILES": "observability",
        }
    )
    start = time.monotonic()
    try:
        project.compose(
            "up", "--detach", "--wait", "--wait-timeout", "120", "prometheus", timeout_s=180
        )
        note(f"\n[monitoring] Prometheus up (healthy) in {time.monotonic() - start:.1f}s")
        yield Prometheus(f"http://127.0.0.1:{port}")
    finally:
        project.compose("rm", "--stop", "--force", "--volumes", "prometheus", check=False)
        # The named volume too: the session's `down --volumes` runs without the profile and
        # leaves a volume that only a profile's service uses.
        with contextlib.suppress(docker.errors.NotFound):
            project.client.volumes.get(f"{project.name}_prometheus").remove(force=True)
        project.env.clear()
        project.env.update(saved)


def _expected_targets(cluster: Cluster) -> dict[str, int]:
    nodes = 1 + len(cluster.workers())  # the head and every running worker
    return {"entry": 1, "node": nodes, "ray": nodes}


def test_prometheus_scrapes_every_part(cluster: Cluster, prometheus: Prometheus) -> None:
    cluster.wait_serving(timeout_s=300)
    expected = _expected_targets(cluster)

    def all_up() -> dict[str, int] | None:
        up = {role: 0 for role in expected}
        for series in prometheus.query('up{rsh_role=~"entry|node|ray"} == 1'):
            up[series["metric"]["rsh_role"]] += 1
        return up if up == expected else None

    start = time.monotonic()
    wait_for(f"targets up per role == {expected}", all_up, timeout_s=90, interval_s=1)
    note(f"[monitoring] every target up {time.monotonic() - start:.1f}s later: {expected}")
    # The rules are loaded: both groups, evaluated without error.
    groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {g["name"]: g for g in groups}
    assert {"ray-serve-haproxy.recording", "ray-serve-haproxy.alerts"} <= set(names), set(names)
    for group in groups:
        for rule in group["rules"]:
            assert rule.get("health") in ("ok", "unknown"), (rule["name"], rule.get("lastError"))
    # Prometheus is published on loopback only; the entry's exporter, scraped inside the
    # network, is not published at all.
    container = cluster.project.container("prometheus")
    container.reload()
    published = [
        (port, binding["HostIp"])
        for port, bindings in container.attrs["NetworkSettings"]["Ports"].items()
        for binding in bindings or []
    ]
    assert published and all(ip == "127.0.0.1" for _, ip in published), published
    cluster.entry.reload()
    assert not cluster.entry.attrs["NetworkSettings"]["Ports"].get("9101/tcp"), (
        "entry publishes 9101"
    )


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, Grafana's variables filled in."""
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


def test_every_dashboard_query_returns_data_under_load(
    cluster: Cluster, prometheus: Prometheus
) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 12, queries
    urls = {f"{cluster.base_url}{prefix}": app for app, prefix in APPS.items()}
    empty: list[tuple[str, str]] = list(queries)
    start = time.monotonic()

    def has_data(expr: str) -> bool:
        # A number a panel can draw (histogram_quantile over no traffic is NaN: a blank line).
        return any(math.isfinite(float(s["value"][1])) for s in prometheus.query(expr))

    with Load(urls, concurrency=8, max_duration_s=150) as load:
        # Rates need two scrapes in their window, Ray reports its histograms every few seconds.
        while empty and time.monotonic() - start < 120:
            time.sleep(5)
            empty = [(title, expr) for title, expr in empty if not has_data(expr)]
        # The load shows: requests per second into the entry above zero.
        rates = prometheus.query(queries[0][1])
        assert sum(float(s["value"][1]) for s in rates) > 1, (queries[0], rates)
    samples = load.snapshot()
    took = time.monotonic() - start
    note(
        f"[monitoring] {len(queries) - len(empty)} of {len(queries)} dashboard queries returned"
        f" data within {took:.0f}s of load; load: {summarize(samples, took)}"
    )
    assert not empty, "dashboard queries with no data:\n" + "\n".join(
        f"  {title}: {expr}" for title, expr in empty
    )
    assert samples and all(s.ok for s in samples), summarize(samples, took)


def test_worker_kill_fires_node_out_and_resolves(cluster: Cluster, prometheus: Prometheus) -> None:
    cluster.wait_serving(timeout_s=300)
    in_entry = cluster.entry_up_addresses()
    workers = [w for w in cluster.workers() if w.ip in in_entry]
    assert workers, f"no worker in the entry: {in_entry}"
    total_workers = len(cluster.project.containers("worker", include_stopped=True))

    def steady() -> list[dict[str, Any]] | None:
        # Prometheus sees every node the entry routes to, and nothing pending or firing.
        nodes = prometheus.query('rsh:entry_nodes_up:max{proxy="nodes_http"}')
        counted = int(float(nodes[0]["value"][1])) if nodes else -1
        return nodes if counted == len(in_entry) and not prometheus.alerts(NODE_OUT) else None

    wait_for(f"{len(in_entry)} nodes in the entry, {NODE_OUT} silent", steady, timeout_s=90)
    victim = workers[-1]
    note(f"[monitoring] killing {victim.name} ({victim.ip}); entry nodes {sorted(in_entry)}")
    killed_at = time.monotonic()
    victim.container.kill()

    alert = wait_for(
        f"{NODE_OUT} firing", lambda: prometheus.firing(NODE_OUT), timeout_s=FIRE_BOUND_S + 30
    )
    fired_after = time.monotonic() - killed_at
    note(
        f"[monitoring] {NODE_OUT} fired {fired_after:.1f}s after `docker kill`"
        f" (bound {FIRE_BOUND_S}s): {alert[0]['annotations']['summary']}"
    )
    assert fired_after < FIRE_BOUND_S

    start = time.monotonic()
    cluster.project.up("--scale", f"worker={total_workers}")
    up_took = time.monotonic() - start
    wait_for(
        f"{NODE_OUT} resolved",
        lambda: not prometheus.alerts(NODE_OUT),
        timeout_s=RESOLVE_BOUND_S + 60,
        interval_s=1,
    )
    resolved_after = time.monotonic() - start - up_took
    note(
        f"[monitoring] {NODE_OUT} resolved {resolved_after:.1f}s after `docker compose up`"
        f" returned ({up_took:.1f}s to bring the worker back; bound {RESOLVE_BOUND_S}s)"
    )
    assert resolved_after < RESOLVE_BOUND_S
    cluster.wait_serving(timeout_s=120)


def test_images_ship_the_repositorys_rules(cluster: Cluster, prometheus: Prometheus) -> None:
    """The rules operators load from the image, and those the profile's Prometheus evaluates,
    are the repository's."""
    rules = REPO / "monitoring" / "prometheus" / "rules" / "ray-serve-haproxy.yml"
    in_image = "/opt/ray-serve-haproxy/monitoring/prometheus/rules/ray-serve-haproxy.yml"
    code, out = cluster.project.exec(cluster.head, ["cat", in_image])
    assert code == 0 and out == rules.read_text(), f"{in_image} differs ({code})"
    code, out = cluster.project.exec(
        cluster.project.container("prometheus"),
        ["cat", "/etc/prometheus/rules/ray-serve-haproxy.yml"],
    )
    assert code == 0 and out == rules.read_text(), f"the Prometheus image's rules differ ({code})"
