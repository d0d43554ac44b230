"""`check`'s report of the ports a node listens on, on which interfaces, and for whom."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.env_checks import Level, check_exposure, run_checks
from ray_serve_haproxy.exposure import Audience, observed, planned
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.listeners import Listener, listening, parse_proc_net_tcp
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"
Load = Callable[..., EffectiveSettings]
ADDRESSES = {"127.0.0.1": "lo", "172.17.0.2": "eth0"}
FACTS = HostFacts(cpus=2, shm_bytes=2**29, haproxy_binary="/bin/true", local_addresses=ADDRESSES)


def lone_head_sockets() -> list[Listener]:
    sockets = parse_proc_net_tcp((DATA / "proc_net_tcp.txt").read_text())
    return sockets + parse_proc_net_tcp((DATA / "proc_net_tcp6.txt").read_text())


def test_parse_proc_net_tcp_reads_listeners_only() -> None:
    sockets = lone_head_sockets()
    pairs = {(s.address, s.port) for s in sockets}
    # From the captured lone head: HAProxy's frontends, the dashboard on loopback, the GCS on
    # the IPv6 wildcard, the Ray Client server on the node's address (IPv4-mapped).
    assert {("0.0.0.0", 8000), ("0.0.0.0", 8404), ("0.0.0.0", 9101), ("0.0.0.0", 9000)} <= pairs
    assert ("127.0.0.1", 8265) in pairs
    assert ("::", 6379) in pairs
    assert {("172.17.0.2", 10001), ("127.0.0.1", 10001)} <= pairs
    assert len(sockets) == 39  # every LISTEN line, none of the established ones


def test_listener_scope() -> None:
    assert Listener("0.0.0.0", 1, "1").everywhere and not Listener("0.0.0.0", 1, "1").loopback
    assert Listener("::", 1, "1").everywhere
    assert Listener("127.0.0.1", 1, "1").loopback and Listener("::1", 1, "1").loopback


def test_observed_lone_head(load: Load) -> None:
    values = load().values
    found = {e.subject: e for e in observed(values, Role.HEAD, lone_head_sockets(), ADDRESSES)}
    stats = found["listening: tcp 8404 (RAY_SERVE_HAPROXY_STATS_PORT)"]
    assert stats.warn and stats.audience == Audience.OPERATORS
    assert "HAProxy stats page, no authentication on 0.0.0.0: every interface " in stats.detail
    assert "(lo 127.0.0.1, eth0 172.17.0.2)" in stats.detail
    assert found["listening: tcp 9101 (RAY_SERVE_HAPROXY_METRICS_PORT)"].warn
    dashboard = found["listening: tcp 8265 (RSH_DASHBOARD_PORT)"]
    assert not dashboard.exposed and not dashboard.warn  # RSH_DASHBOARD_HOST 127.0.0.1
    http = found["listening: tcp 8000 (RSH_HTTP_PORT)"]
    assert http.exposed and not http.warn and http.audience == Audience.CLIENTS
    assert found["listening: tcp 6379 (RSH_RAY_PORT)"].warn  # the GCS, on every interface
    client = found["listening: tcp 10001 (RSH_RAY_CLIENT_SERVER_PORT)"]
    assert client.warn and "172.17.0.2" in client.detail
    replicas = found["listening: tcp 30000-31000 (RAY_SERVE_DIRECT_INGRESS_*_HTTP_PORT)"]
    assert "port 30000, 30001, 30002, 30003" in replicas.detail
    workers = found["listening: tcp 10002-19999 (RSH_MIN/MAX_WORKER_PORT)"]
    assert workers.audience == Audience.CLUSTER and not workers.warn
    # Ray's random ports in one line, with the advice to fix them.
    others = next(e for s, e in found.items() if "chosen by Ray" in s)
    assert "52365" not in others.detail  # the agent's HTTP port is known
    # Ray's fixed Prometheus ports of the head, not chosen at random: named, for monitoring.
    assert "44217" not in others.detail and "44227" not in others.detail
    autoscaler = found["listening: tcp 44217 (AUTOSCALER_METRIC_PORT)"]
    assert autoscaler.warn and autoscaler.audience == Audience.OPERATORS
    assert found["listening: tcp 44227 (DASHBOARD_METRIC_PORT)"].warn
    assert "fix them with the RSH_*_PORT settings" in others.detail


def test_planned_head_before_start(load: Load) -> None:
    values = load(RSH_DASHBOARD_HOST="0.0.0.0").values
    found = {e.subject: e for e in planned(values, Role.HEAD, ADDRESSES)}
    assert found["will listen: tcp 8265 (RSH_DASHBOARD_PORT)"].warn  # now beyond loopback
    assert found["will listen: tcp 8404 (RAY_SERVE_HAPROXY_STATS_PORT)"].warn
    worker = {e.subject for e in planned(load().values, Role.WORKER, ADDRESSES)}
    assert not any("RSH_DASHBOARD_PORT" in s or "RSH_RAY_PORT" in s for s in worker)


def test_check_on_a_running_node_lists_listeners_instead_of_busy_ports(load: Load) -> None:
    effective = load()
    findings = run_checks(effective, Role.HEAD, FACTS, ports=True, running=True)
    subjects = [f.subject for f in findings]
    assert not any(s.startswith("tcp ") for s in subjects), "free-port checks on a running node"
    assert any(s.startswith("listening: ") for s in subjects)
    before = run_checks(effective, Role.HEAD, FACTS, ports=False, running=False)
    levels = {f.subject: f.level for f in before}
    assert levels["will listen: tcp 8404 (RAY_SERVE_HAPROXY_STATS_PORT)"] == Level.WARN


def test_check_exposure_of_this_process(load: Load) -> None:
    """Against the real /proc: a socket this test opens is listed with its owner."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        mine = [s for s in listening() if s.port == port]
        assert mine and mine[0].address == "127.0.0.1" and mine[0].owner.startswith("python")
        findings = check_exposure(load(), Role.HEAD, FACTS, mine)
        assert findings[0].level == Level.OK and "127.0.0.1" in findings[0].detail
