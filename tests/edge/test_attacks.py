"""Hostile clients through the entry (the published 127.0.0.1 ports of the session cluster),
each bounded in count and time, while 24 well-behaved clients (HTTP and gRPC) send requests.

Every attack asserts what the entry did to the attacker, that no well-behaved request failed,
that their latency stayed bounded, and that a new connection is served again within 5 s once
the attack stopped. Numbers go to the results file and docs/edge-security.md's table.
Modules and tests run in file order: the suite ends by checking that the 60 s request and
streams started with the first attack completed, and that the cluster is healthy.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from . import h1_attacks as h1
from . import h2_attacks as h2
from .conftest import Edge, LongWork
from .measure import (
    RECOVERY_LIMIT_S,
    loopback_forwarded_by_kernel,
    port_proxy_nofile,
    port_proxy_pids,
    proxy_capacity,
)

pytestmark = pytest.mark.edge

# The entry's settings the attacks are sized against (compose.yaml, settings.py defaults).
MAXCONN = 4096
TIMEOUT_HTTP_REQUEST_S = 10
MAX_BAD_REQUESTS = 1000
# Well-behaved latency bounds while an attack runs.
P99_LIMIT_MS = 3000
MAX_LIMIT_MS = 10_000


def well_behaved_unharmed(result: dict[str, Any]) -> None:
    name = result["attack"]
    assert result["failed"] == 0, (
        f"{name}: {result['failed']} of {result['requests']} well-behaved requests failed: "
        f"{result['failures']}"
    )
    assert result["p99_ms"] <= P99_LIMIT_MS and result["max_ms"] <= MAX_LIMIT_MS, (
        f"{name}: well-behaved latency p99 {result['p99_ms']} ms (limit {P99_LIMIT_MS}), "
        f"max {result['max_ms']} ms (limit {MAX_LIMIT_MS})"
    )
    assert result["recovery_s"] <= RECOVERY_LIMIT_S, (
        f"{name}: a new connection was served {result['recovery_s']} s after the attack "
        f"stopped (limit {RECOVERY_LIMIT_S} s)"
    )


def probe(edge: Edge, payloads: dict[str, tuple[bytes, set[int]]]) -> dict[str, Any]:
    """Each raw request once on its own connection: what came back, what was allowed."""
    seen: dict[str, Any] = {}
    for name, (payload, allowed) in payloads.items():
        statuses, closed = h1.exchange(edge.host, edge.cluster.http_port, payload)
        seen[name] = {"statuses": statuses, "closed": closed, "allowed": sorted(allowed)}
    return seen


def refused_as_allowed(seen: dict[str, Any]) -> list[str]:
    """The cases that got something else than one allowed answer (and nothing after it)."""
    return [
        f"{name}: {case['statuses']} (allowed one of {case['allowed']})"
        for name, case in seen.items()
        if len(case["statuses"]) != 1 or case["statuses"][0] not in case["allowed"]
    ]


# --- HTTP/1: requests the entry must refuse, and never pass on as two ------------------------


def test_request_smuggling(edge: Edge, long_work: LongWork) -> None:
    result = edge.attack(
        "request smuggling (CL.TE, TE.CL, obfuscated TE, duplicate CL)",
        "http",
        lambda: probe(edge, h1.SMUGGLING),
    )
    wrong = refused_as_allowed(result["observed"])
    assert not wrong, "smuggling payloads answered otherwise than allowed:\n" + "\n".join(wrong)
    well_behaved_unharmed(result)


def test_malformed_and_oversized_requests(edge: Edge) -> None:
    result = edge.attack(
        "oversized and malformed request lines and headers",
        "http",
        lambda: probe(edge, h1.MALFORMED),
    )
    wrong = refused_as_allowed(result["observed"])
    assert not wrong, "malformed requests answered otherwise than allowed:\n" + "\n".join(wrong)
    well_behaved_unharmed(result)


def test_comma_in_the_authority(edge: Edge) -> None:
    """COMMA-AUTHORITY: 400 needs the request-hygiene rules of issue 31's deliverable 1 (branch
    wt-edgebuild); the lead checks this test after merging both branches."""

    def run() -> dict[str, Any]:
        seen = probe(edge, h1.COMMA_AUTHORITY)
        # HTTP/2 with prior knowledge on the HTTP port, where the request-hygiene rules are.
        c = h2.RawH2(edge.host, edge.cluster.http_port)
        try:
            c.send(
                h2.frame(
                    h2.HEADERS,
                    h2.END_HEADERS | h2.END_STREAM,
                    1,
                    c.headers_block("a,b", "/hello", method="GET"),
                )
            )
            c.wait_closed(2.0)
            c.drain(0.5)
        finally:
            c.close()
        seen["comma in :authority (HTTP/2)"] = {
            "statuses": c.outcome.statuses
            or ([0] if c.outcome.closed_by_server or c.outcome.resets else []),
            "closed": c.outcome.closed_by_server,
            "allowed": [0, 400],  # 0: the stream reset or the connection closed, no answer
        }
        return seen

    result = edge.attack("comma in the authority (Host, HTTP/2 :authority)", "http", run)
    well_behaved_unharmed(result)
    wrong = refused_as_allowed(result["observed"])
    assert not wrong, "COMMA-AUTHORITY: a comma in the authority was not refused:\n" + "\n".join(
        wrong
    )


# --- slow and idle clients: slots are shed, the published port never dies -------------------


def port_proxy_survived(edge: Edge) -> None:
    """Docker's port proxy for the HTTP port, when the engine runs one, is still there (when it
    exits, the port is dead until the entry is restarted)."""
    if edge.meta["docker_proxy"]:
        assert port_proxy_pids(edge.cluster.http_port), "Docker's port proxy for the port exited"


def test_slow_request_body(edge: Edge) -> None:
    connections = 300
    result = edge.attack(
        f"slow request body ({connections} POSTs, 16 bytes/s)",
        "http",
        lambda: h1.slow_body(
            edge.host, edge.cluster.http_port, connections, hold_s=TIMEOUT_HTTP_REQUEST_S + 4
        ).summary(),
    )
    seen = result["observed"]
    # The body must arrive within timeout http-request (option http-buffer-request): 408, and
    # no slow body ever reaches a replica.
    assert seen["statuses"].get(408, 0) >= connections * 0.95, f"slow bodies not refused: {seen}"
    # HAProxy 2.8 closes the connection with its 408; 3.0.11 keeps reading the announced body
    # while the client keeps sending it (measured; docs/edge-security.md), so the slot stays
    # taken until the client stops.
    if edge.meta["haproxy"].startswith("HAProxy version 2."):
        assert seen["closed_by_entry"] >= connections * 0.95, f"not closed after 408: {seen}"
    well_behaved_unharmed(result)


def test_slowloris_above_maxconn(edge: Edge) -> None:
    # 4,300 (above maxconn): the count that left the published port dead.
    connections, limited = edge.flood_size(MAXCONN + 204)
    hold_s = 2 * TIMEOUT_HTTP_REQUEST_S + 6
    result = edge.attack(
        f"slowloris, {connections} connections (maxconn {MAXCONN}){limited}",
        "http",
        lambda: h1.slowloris(edge.host, edge.cluster.http_port, connections, hold_s).summary(),
    )
    seen = result["observed"]
    assert seen["refused"] == seen["connect_timed_out"] == 0, f"connections not taken: {seen}"
    assert seen["closed_by_entry"] == seen["opened"], (
        f"the entry did not shed every slowloris connection within {hold_s} s: {seen}"
    )
    port_proxy_survived(edge)
    well_behaved_unharmed(result)


def test_ten_thousand_idle_connections(edge: Edge) -> None:
    connections, limited = edge.flood_size(10_000)
    result = edge.attack(
        f"{connections} idle connections{limited}",
        "http",
        lambda: h1.idle(
            edge.host, edge.cluster.http_port, connections, hold_s=TIMEOUT_HTTP_REQUEST_S + 5
        ).summary(),
    )
    seen = result["observed"]
    assert seen["refused"] == 0, f"connections refused at the published port: {seen}"
    # Without Docker's port proxy the connections reach the entry's listener itself: above
    # maxconn and its accept queue the kernel drops new SYNs until the entry sheds idle ones,
    # so a few of a 10,000-connection burst may wait past the client's 3 s connect timeout.
    assert seen["connect_timed_out"] <= connections // 100, f"connections not taken: {seen}"
    # Those the entry accepted (up to maxconn) are closed by timeout http-request.
    shed = min(connections, MAXCONN) * 9 // 10
    assert seen["closed_by_entry"] >= shed, f"idle connections not shed (want {shed}): {seen}"
    port_proxy_survived(edge)
    well_behaved_unharmed(result)


def test_port_proxy_holds_a_flood_above_maxconn(edge: Edge) -> None:
    """The engine side of "no permanent outage": Docker's port proxy must hold 10,000 client
    connections (6 descriptors each), else a flood kills the published port for good. Only the
    engine's open-files limit decides it (scripts/engine-limits.sh says what yours allows).
    Without a proxy (the engine scripts/bootstrap-docker.sh starts: userland-proxy false) the
    kernel forwards the port: nothing to run out, and the floods above ran at full size."""
    if not edge.meta["docker_proxy"]:
        forwarded = loopback_forwarded_by_kernel()
        if forwarded is None:
            pytest.skip("no docker-proxy for the port, and iptables cannot be read here")
        assert forwarded, "no docker-proxy for the port, yet the kernel does not forward it"
        assert edge.flood_size(10_000) == (10_000, "")
        return
    capacity = proxy_capacity(edge.cluster.http_port)
    if capacity is not None and capacity < 11_000:
        pytest.xfail(
            f"Docker's port proxy for 127.0.0.1:{edge.cluster.http_port} has "
            f"{port_proxy_nofile(edge.cluster.http_port)} open files: about {capacity} "
            "connections, and more kill the port until the entry is restarted. Raise dockerd's "
            "limit (needs CAP_SYS_RESOURCE) or run it with userland-proxy false."
        )


# --- HTTP/2 on the gRPC port ------------------------------------------------------------------

GRPC_PATH = "/rsh.demo.Greeter/SayHello"


def test_rapid_reset(edge: Edge) -> None:
    conns, pairs = 8, 20_000

    def run() -> dict[str, Any]:
        deadline = time.monotonic() + 8
        outcomes = [
            h2.rapid_reset(edge.host, edge.cluster.grpc_port, "entry", GRPC_PATH, pairs, deadline)
            for _ in range(conns)
        ]
        return {
            "connections": conns,
            "pairs_sent": sum(o.sent for o in outcomes),
            "closed_by_entry": sum(o.closed_by_server for o in outcomes),
            "pairs_before_close": [o.sent for o in outcomes],
        }

    result = edge.attack(f"HTTP/2 rapid reset ({conns} connections x {pairs} pairs)", "grpc", run)
    seen = result["observed"]
    # A connection is closed (silent-drop) by the first of its streams that reaches the entry's
    # rules after MAX_BAD_REQUESTS bad ones; streams reset before they are analysed never do,
    # so when that happens depends on timing (measured: 8, 7 and 8 of 8 within 8 s).
    assert seen["closed_by_entry"] >= conns // 2, f"rapid-reset connections left open: {seen}"
    # One error line per reset stream was 130,162 lines (31 MB) in 8 s before.
    assert result["entry_log_lines"] <= 50 * conns, (
        f"rapid reset wrote {result['entry_log_lines']} lines to the entry's log"
    )
    well_behaved_unharmed(result)


def test_continuation_flood(edge: Edge) -> None:
    def run() -> dict[str, Any]:
        o = h2.continuation_flood(
            edge.host, edge.cluster.grpc_port, "entry", GRPC_PATH, 100_000, time.monotonic() + 8
        )
        return {
            "frames_sent": o.sent,
            "closed_by_entry": o.closed_by_server,
            "goaway_error": o.goaway_error,
            "close_after_s": o.seconds_to_close,
        }

    result = edge.attack("HTTP/2 CONTINUATION flood", "grpc", run)
    assert result["observed"]["closed_by_entry"], result["observed"]
    well_behaved_unharmed(result)


def test_ping_flood(edge: Edge) -> None:
    def run() -> dict[str, Any]:
        outcomes = [
            h2.ping_flood(edge.host, edge.cluster.grpc_port, 500_000, time.monotonic() + 6)
            for _ in range(2)
        ]
        return {
            "frames_sent": sum(o.sent for o in outcomes),
            "closed_by_entry": sum(o.closed_by_server for o in outcomes),
            "entry_stopped_reading": sum(o.stalled for o in outcomes),
        }

    result = edge.attack("HTTP/2 PING flood (2 connections, ACKs never read)", "grpc", run)
    well_behaved_unharmed(result)


def test_settings_flood(edge: Edge) -> None:
    def run() -> dict[str, Any]:
        outcomes = [
            h2.settings_flood(edge.host, edge.cluster.grpc_port, 200_000, time.monotonic() + 6)
            for _ in range(2)
        ]
        return {
            "frames_sent": sum(o.sent for o in outcomes),
            "closed_by_entry": sum(o.closed_by_server for o in outcomes),
            "entry_stopped_reading": sum(o.stalled for o in outcomes),
        }

    result = edge.attack("HTTP/2 SETTINGS flood (2 connections, ACKs never read)", "grpc", run)
    well_behaved_unharmed(result)


def test_oversized_hpack(edge: Edge) -> None:
    def run() -> dict[str, Any]:
        o = h2.hpack_oversized(
            edge.host, edge.cluster.grpc_port, "entry", GRPC_PATH, 200, time.monotonic() + 8
        )
        return {
            "requests": o.sent,
            "table_update_closed": o.closed_by_server,
            "goaway_error": o.goaway_error,
            "statuses": sorted(set(o.statuses)),
        }

    result = edge.attack("HTTP/2 oversized HPACK table and headers", "grpc", run)
    seen = result["observed"]
    assert seen["table_update_closed"], f"a 1 GiB HPACK table update was accepted: {seen}"
    assert not set(seen["statuses"]) - {400, 431}, f"oversized headers were served: {seen}"
    well_behaved_unharmed(result)


def test_grpc_broken_frames(edge: Edge) -> None:
    def run() -> dict[str, Any]:
        o = h2.grpc_broken_frames(
            edge.host, edge.cluster.grpc_port, "entry", GRPC_PATH, 50, time.monotonic() + 10
        )
        return {
            "rounds": o.sent,
            "closed_by_entry": o.closed_by_server,
            "statuses": sorted(set(o.statuses)),
        }

    result = edge.attack("gRPC with broken frames", "grpc", run)
    assert result["observed"]["closed_by_entry"], result["observed"]
    well_behaved_unharmed(result)


# --- afterwards ---------------------------------------------------------------------------------


def test_long_requests_and_streams_outlived_every_limit(long_work: LongWork) -> None:
    long_work.wait(timeout_s=150)
    assert set(long_work.results) == {"request", "stream", "grpc stream"}, long_work.results
    failed = {k: v for k, v in long_work.results.items() if not v[0]}
    assert not failed, f"60 s requests or streams cut: {failed}"


def test_cluster_healthy_after_the_suite(edge: Edge) -> None:
    entry = edge.cluster.entry
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        entry.reload()
        if entry.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(2)
    assert entry.attrs["State"]["Health"]["Status"] == "healthy", entry.attrs["State"]
    assert edge.cluster.serving(), "the cluster does not serve every route after the suite"
    assert requests.get(f"{edge.cluster.base_url}/hello", timeout=5).status_code == 200
    restarts = edge.restarts()
    assert restarts == edge.restarts_at_start, (
        f"containers restarted during the suite: {restarts}, at its start {edge.restarts_at_start}"
    )
