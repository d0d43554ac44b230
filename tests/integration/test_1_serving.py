"""The compose cluster comes up from nothing and serves both demo apps through the entry from
replicas on both workers: routes, spread, the head's HAProxy's own view, metrics, access log."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter, defaultdict

import pytest
import requests
from docker.models.containers import Container

from .cluster import APPS, BACKENDS, DIRECT_INGRESS_PORTS, Cluster, note, wait_for
from .load import Load

pytestmark = pytest.mark.integration


def test_cluster_comes_up_and_lists_both_routes(cluster: Cluster) -> None:
    note(f"\n`docker compose up --wait` from nothing to serving: {cluster.up_seconds:.1f}s")
    head = cluster.head
    head.reload()
    assert head.attrs["State"]["Health"]["Status"] == "healthy"
    workers = cluster.workers()
    assert len(workers) == 2, [w.name for w in workers]
    for worker in workers:
        assert worker.container.attrs["State"]["Health"]["Status"] == "healthy", worker.name
    entry = cluster.entry
    entry.reload()
    assert entry.attrs["State"]["Health"]["Status"] == "healthy"
    # The entry balances over every node that serves: the head and both workers (`--wait` needs
    # one of them; the others pass the entry's checks within seconds).
    nodes = {cluster.project.ip(cluster.head), *(w.ip for w in workers)}
    wait_for(
        f"every node UP in the entry ({sorted(nodes)})",
        lambda: cluster.entry_up_addresses() == nodes,
        timeout_s=60,
    )

    health = cluster.get("/-/healthz")
    assert health.status_code == 200, health.text
    # hello and echo, plus whatever else the image's demo config deploys (the gRPC app).
    assert cluster.routes() == cluster.expected_routes
    assert cluster.expected_routes.items() >= {p: a for a, p in APPS.items()}.items()
    assert cluster.app_statuses() == dict.fromkeys(cluster.expected_routes.values(), "RUNNING")


def test_ports_published_on_loopback_only(cluster: Cluster) -> None:
    # Clients reach the entry (HTTP, gRPC, and with compose.tls.yaml HTTPS and gRPC over TLS);
    # the head publishes its dashboard and metrics.
    entry_ports = {"8000/tcp", "9000/tcp"}
    if cluster.https_port:
        entry_ports |= {"8443/tcp", "9443/tcp"}
    for container, expected in (
        (cluster.entry, entry_ports),
        (cluster.head, {"8265/tcp", "9101/tcp"}),
    ):
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"]
        published = {
            port: [(b["HostIp"], b["HostPort"]) for b in hosts]
            for port, hosts in bindings.items()
            if hosts
        }
        print(f"\n{container.name} publishes {published}")
        assert set(published) == expected
        for port, hosts in published.items():
            assert all(ip == "127.0.0.1" for ip, _ in hosts), (
                f"{port} published beyond loopback: {hosts}"
            )
    for worker in cluster.workers():
        worker_ports = worker.container.attrs["NetworkSettings"]["Ports"] or {}
        assert not any(worker_ports.values()), f"{worker.name} publishes {worker_ports}"


def test_both_apps_answer_from_replicas_on_both_workers(cluster: Cluster) -> None:
    workers = {w.ip: w for w in cluster.workers()}
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    replicas: dict[str, set[str]] = defaultdict(set)
    session = requests.Session()
    for i in range(200):
        app = "hello" if i % 2 == 0 else "echo"
        response = session.get(f"{cluster.base_url}{APPS[app]}?i={i}", timeout=10)
        assert response.status_code == 200, (
            f"request {i} to {app}: {response.status_code} {response.text}"
        )
        body = response.json()
        assert body["app"] == app
        worker = workers.get(body["node_ip"])
        assert worker is not None, (
            f"{app} answered from {body['node_ip']}, not a worker: {sorted(workers)}"
        )
        assert body["hostname"] == worker.hostname, body
        seen[app][worker.name] += 1
        replicas[app].add(body["replica_id"])
    note(f"\n200 requests by app and worker: {dict(seen)}; replicas: {dict(replicas)}")
    for app in APPS:
        assert set(seen[app]) == {w.name for w in workers.values()}, (
            f"{app} not answered by both workers"
        )
        assert len(replicas[app]) == 2


def test_haproxy_on_head_routes_straight_to_replicas(cluster: Cluster) -> None:
    workers = {w.ip: w.name for w in cluster.workers()}

    def all_checked_up() -> dict[str, list[dict[str, str]]] | None:
        # Servers of a freshly reloaded HAProxy are "UP 1/2" until their first check passes.
        servers = cluster.replica_servers()
        rows = [r for backend in BACKENDS.values() for r in servers.get(backend, [])]
        return servers if rows and all(r["status"] == "UP" for r in rows) else None

    servers = wait_for(
        "every replica server UP after a passed health check", all_checked_up, timeout_s=30
    )
    for app, backend in BACKENDS.items():
        rows = servers.get(backend, [])
        summary = [(r["svname"], r["addr"], r["status"]) for r in rows]
        print(f"\n{backend}: {summary}")
        assert len(rows) == 2, summary
        hosts = set()
        for row in rows:
            ip, port = row["addr"].rsplit(":", 1)
            assert ip in workers, f"{row['svname']} at {row['addr']} is not on a worker {workers}"
            assert int(port) in DIRECT_INGRESS_PORTS, row["addr"]
            assert row["status"] == "UP", row
            assert app in row["svname"], row["svname"]
            hosts.add(ip)
        assert len(hosts) == 2, f"{app}'s replicas are not on two workers: {summary}"

    # The replica a response names is one of the servers HAProxy routes to.
    names = {r["svname"] for rows in servers.values() for r in rows}
    for app, prefix in APPS.items():
        replica = cluster.get(prefix).json()["replica"]
        assert re.sub(r"[^A-Za-z0-9._-]+", "_", replica.replace("#", "-")) in names, (
            app,
            replica,
            names,
        )

    # The runtime's own `status --json` reports the same servers.
    status_text = json.dumps(cluster.status_json())
    missing = sorted(n for n in names if n not in status_text)
    assert not missing, f"`status --json` does not list {missing}:\n{status_text[:3000]}"
    assert cluster.status_server_counts() == dict.fromkeys(APPS, 2)


def _metric_sum(text: str, family: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(family + "{") and not line.startswith(family + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_prometheus_exporter_counts_requests(cluster: Cluster) -> None:
    before = requests.get(cluster.metrics_url, timeout=10)
    assert before.status_code == 200
    for family in ("haproxy_frontend_http_requests_total", "haproxy_backend_http_requests_total"):
        assert f"\n{family}{{" in before.text, f"{family} missing from /metrics"
    n = 50
    session = requests.Session()
    for _ in range(n):  # straight to the head's HAProxy (the entry spreads over every node)
        assert session.get(cluster.node_url(cluster.head, "/hello"), timeout=10).status_code == 200
    after = requests.get(cluster.metrics_url, timeout=10).text

    frontend = (
        _metric_sum(before.text, "haproxy_frontend_http_requests_total"),
        _metric_sum(after, "haproxy_frontend_http_requests_total"),
    )
    backend = (
        _metric_sum(before.text, "haproxy_backend_http_requests_total", proxy=BACKENDS["hello"]),
        _metric_sum(after, "haproxy_backend_http_requests_total", proxy=BACKENDS["hello"]),
    )
    note(
        f"\nfrontend requests {frontend[0]:.0f} -> {frontend[1]:.0f};"
        f" {BACKENDS['hello']} {backend[0]:.0f} -> {backend[1]:.0f}"
    )
    assert frontend[1] - frontend[0] >= n
    assert backend[1] - backend[0] >= n


def test_access_log_keeps_the_errors_by_default(cluster: Cluster) -> None:
    """RSH_ACCESS_LOG=errors (the default): HAProxy writes a line per failed request to the
    head's container log, none for the requests that succeeded."""
    marker = f"logprobe-{uuid.uuid4().hex[:12]}"
    url = cluster.node_url(cluster.head, f"/hello?name={marker}")  # the head's own HAProxy
    for _ in range(3):
        assert requests.get(url, timeout=10).status_code == 200
    for _ in range(3):
        no_route = cluster.node_url(cluster.head, f"/{marker}-no-such-route")
        assert requests.get(no_route, timeout=10).status_code == 404

    def logged() -> list[str]:
        return [
            line for line in cluster.project.logs("head", tail=2000).splitlines() if marker in line
        ]

    # The 404s were sent after the 200s: once they are in the log, so would the 200s be.
    lines = wait_for(
        "HAProxy access log lines in the head's logs", logged, timeout_s=30, interval_s=1
    )
    time.sleep(1)
    lines = logged()
    print(f"\n{len(lines)} access log lines, e.g.:\n{lines[0]}")
    assert len(lines) == 3, lines
    assert all(" 404 " in line and "default_backend" in line for line in lines), lines
    assert not lines[0].startswith(("<", "haproxy[")), lines[0]  # HAProxy's raw line, no header


def _cpu_ns(container: Container) -> int:
    """CPU time the container has used so far (its cgroup, as `docker stats` reads it)."""
    return int(container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"])


def test_entry_costs_one_hop(cluster: Cluster) -> None:
    """What the entry adds, measured (not enforced; the benchmark is where speed is judged):
    latency of sequential requests through it against the head's own HAProxy, interleaved,
    and the entry's CPU per request under 16 concurrent clients."""
    via_entry: list[float] = []
    direct: list[float] = []
    entry_session, direct_session = requests.Session(), requests.Session()
    direct_url = cluster.node_url(cluster.head, "/hello")
    for _ in range(200):
        for session, url, out in (
            (entry_session, f"{cluster.base_url}/hello", via_entry),
            (direct_session, direct_url, direct),
        ):
            start = time.perf_counter()
            assert session.get(url, timeout=10).status_code == 200
            out.append(time.perf_counter() - start)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    urls = {f"{cluster.base_url}{prefix}": app for app, prefix in APPS.items()}
    entry = cluster.entry
    before = _cpu_ns(entry)
    with Load(urls, concurrency=16, max_duration_s=60) as load:
        time.sleep(10)
    used_s = (_cpu_ns(entry) - before) / 1e9
    samples = load.snapshot()
    elapsed = load.stopped_at - load.started_at
    note(
        f"\nthe entry's hop: sequential /hello p50 {pct(via_entry, 0.5):.2f} ms through the "
        f"entry vs {pct(direct, 0.5):.2f} ms to the head's HAProxy (p90 {pct(via_entry, 0.9):.2f}"
        f" vs {pct(direct, 0.9):.2f} ms); under 16 clients the entry used {used_s:.2f} CPU-s "
        f"for {len(samples)} requests in {elapsed:.1f}s: {used_s / len(samples) * 1e6:.0f} "
        f"CPU-us per request, {used_s / elapsed * 100:.0f}% of a core"
    )
    assert all(s.ok for s in samples) and len(samples) > 100
    assert used_s > 0
