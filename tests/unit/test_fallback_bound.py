"""The launcher's edit that bounds the wait of a request finding no replica UP
(fallback_bound.py), on the config Ray 2.60 wrote on a compose head."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy import haproxy_launcher
from ray_serve_haproxy.access_log import AccessLogMode
from ray_serve_haproxy.fallback_bound import ENV, MARK, edit
from ray_serve_haproxy.haproxy_launcher import prepare
from ray_serve_haproxy.settings_loader import EffectiveSettings, InvalidSettings

pytestmark = pytest.mark.unit

RAY_CFG = (Path(__file__).parent / "data" / "ray_haproxy.cfg").read_text()


def section(text: str, header: str) -> list[str]:
    lines = text.split("\n")
    start = lines.index(header)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
        len(lines),
    )
    return [line.strip() for line in lines[start + 1 : end]]


def test_each_http_backend_with_a_fallback_gets_the_bound() -> None:
    edited = edit(RAY_CFG, 12)
    bench = section(edited, "backend http-bench")
    none_up = (
        "!{ srv_is_up(http-bench/SERVE_REPLICA_bench-Bench-nacs0z68) } "
        "!{ srv_is_up(http-bench/SERVE_REPLICA_bench-Bench-8sd9pn6q) }"
    )
    marked = "{ var(txn.rsh_no_replica) -m bool }"
    assert [line for line in bench if line.startswith(("http-request", "http-response"))] == [
        f"http-request set-var(txn.rsh_no_replica) bool(true) if {none_up}",
        f"http-request set-header x-request-timeout-seconds 12 if {marked}",
        f"http-response set-status 503 if {marked} {{ status 408 }}",
        f"http-response set-header Retry-After 5 if {marked} {{ status 503 }}",
    ]
    assert any(line.startswith(MARK) for line in bench)
    assert "srv_is_up(http-bench-grpc/SERVE_REPLICA_bench-grpc-BenchGrpc-6swl8zry)" in "\n".join(
        section(edited, "backend http-bench-grpc")
    )
    # gRPC backends (HTTP/2 fallback): HAProxy's own server timeout, its error made UNAVAILABLE.
    grpc = section(edited, "backend grpc-bench")
    grpc_none_up = (
        "!{ srv_is_up(grpc-bench/SERVE_REPLICA_bench-Bench-nacs0z68) } "
        "!{ srv_is_up(grpc-bench/SERVE_REPLICA_bench-Bench-8sd9pn6q) }"
    )
    assert [line for line in grpc if line.startswith(("http-request", "http-after"))] == [
        f"http-request set-var(txn.rsh_no_replica) bool(true) if {grpc_none_up}",
        f"http-request set-timeout server 12s if {marked}",
        f"http-after-response set-status 503 if {marked} {{ status 500:504 }}",
        f"http-after-response set-header Retry-After 5 if {marked} {{ status 503 }}",
    ]
    # The gRPC fallback backend (no backup server) and the rest are untouched.
    for header in ("backend grpc_fallback_backend", "backend default_backend"):
        assert section(edited, header) == section(RAY_CFG, header), header
    # Only lines added, none changed or removed: 6 in each of 2 HTTP and 2 gRPC backends.
    added = [line for line in edited.split("\n") if line not in RAY_CFG.split("\n")]
    assert (
        len(edited.split("\n"))
        == len(RAY_CFG.split("\n")) + len(added)
        == (len(RAY_CFG.split("\n")) + 4 * 6)
    )


def test_editing_twice_adds_nothing_and_zero_turns_it_off() -> None:
    once = edit(RAY_CFG, 10)
    assert edit(once, 10) == once
    assert edit(RAY_CFG, 0) == RAY_CFG


def test_a_backend_with_no_replica_at_all_bounds_every_request() -> None:
    text = (
        "backend http-app\n"
        "    server SERVE_PROXY_ACTOR-fallback-x 10.0.0.2:8500 check backup\n"
        "backend http-plain\n"
        "    server SERVE_REPLICA_a 10.0.0.3:30000 check\n"
    )
    edited = edit(text, 10)
    assert "    http-request set-var(txn.rsh_no_replica) bool(true)\n" in edited
    # Replicas it cannot name (server-template): left as Ray wrote it.
    slots = text.replace(
        "backend http-plain\n", "backend http-plain\n    server-template r 4 x:1\n"
    )
    slots = slots.replace(
        "    server SERVE_REPLICA_a 10.0.0.3:30000 check\n",
        "    server SERVE_PROXY_ACTOR-fallback-x 10.0.0.2:8500 check backup\n",
    )
    assert section(edit(slots, 10), "backend http-plain") == section(slots, "backend http-plain")
    assert section(edited, "backend http-plain") == section(text, "backend http-plain")


def test_the_launcher_applies_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(RAY_CFG)
    monkeypatch.setenv(ENV, "7")
    text = prepare(str(config), AccessLogMode.ALL, os.devnull, taking_over=False).text
    assert "http-request set-header x-request-timeout-seconds 7 if" in text
    assert config.read_text() == text
    monkeypatch.setenv(ENV, "soon")
    assert haproxy_launcher.no_replica_timeout_s() == 0
    monkeypatch.delenv(ENV)
    assert haproxy_launcher.no_replica_timeout_s() == 0


def test_the_setting_is_validated(load: Callable[..., EffectiveSettings]) -> None:
    assert load(RSH_NO_REPLICA_TIMEOUT_S="0").values.no_replica_timeout_s == 0
    assert load(RSH_NO_REPLICA_TIMEOUT_S="45").values.no_replica_timeout_s == 45
    for bad in ("-1", "10s", "soon"):
        with pytest.raises(InvalidSettings, match="RSH_NO_REPLICA_TIMEOUT_S"):
            load(RSH_NO_REPLICA_TIMEOUT_S=bad)
