"""The entry role: its node list, the HAProxy config and supervisord config it renders, and its
healthcheck against a fake admin socket and a local HTTP server. (`haproxy -c` on the rendered
config runs in the image tests, where the image's HAProxy is.)"""

from __future__ import annotations

import configparser
import shlex
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.entry import (
    config_path,
    node_servers,
    render_haproxy_config,
    socket_path,
)
from ray_serve_haproxy.healthcheck import Probe, run_checks
from ray_serve_haproxy.settings_loader import EffectiveSettings, InvalidSettings, Role
from ray_serve_haproxy.state_dir import read_role
from ray_serve_haproxy.supervisor_config import render_entry_supervisor_config
from ray_serve_haproxy.value_types import EntryNode

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
COMPOSE_NODES = {"RSH_ENTRY_NODES": "head,worker"}


def lines(config: str) -> list[str]:
    return [line.strip() for line in config.splitlines() if line.strip()]


def section(config: str, header: str) -> list[str]:
    """The lines of one HAProxy section (`backend nodes_http`...), comments dropped."""
    out: list[str] = []
    inside = False
    for raw in config.splitlines():
        if raw and not raw[0].isspace():
            inside = raw.strip() == header
            continue
        if inside and raw.strip() and not raw.strip().startswith("#"):
            out.append(raw.strip())
    return out


# --- settings ---------------------------------------------------------------------------------


def test_entry_needs_its_nodes(load: Load) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load(Role.ENTRY)
    (error,) = caught.value.errors
    assert str(error).startswith("RSH_ENTRY_NODES=''") and "required for `entry`" in str(error)


def test_node_list_parsing(load: Load) -> None:
    values = load(
        Role.ENTRY, RSH_ENTRY_NODES=" head , worker:8001, 10.0.0.7, [fd00::7]:8002,"
    ).values
    assert values.entry_nodes == (
        EntryNode("head"),
        EntryNode("worker", 8001),
        EntryNode("10.0.0.7"),
        EntryNode("fd00::7", 8002),
    )
    servers = node_servers(values)
    assert [(s.name, s.host, s.http_port, s.resolved) for s in servers] == [
        ("head", "head", 8000, True),
        ("worker_8001", "worker", 8001, True),
        ("node_10.0.0.7", "10.0.0.7", 8000, False),
        ("node_fd00__7_8002", "fd00::7", 8002, False),
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("head:http", "port is not a number"),
        ("head:0", "port out of range"),
        ("bad_host!", "not a host name or IP address"),
        ("head,head", "listed twice"),
        (",", "no node"),
    ],
)
def test_bad_node_lists(load: Load, raw: str, problem: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load(Role.ENTRY, RSH_ENTRY_NODES=raw)
    (error,) = caught.value.errors
    assert str(error).startswith("RSH_ENTRY_NODES=") and problem in str(error)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("RSH_ENTRY_CHECK_INTER", "1"),
        ("RSH_ENTRY_CONNECT_TIMEOUT", "0ms"),
        ("RSH_ENTRY_SLOTS", "0"),
        ("RSH_ENTRY_CHECK_FALL", "0"),
    ],
)
def test_bad_entry_tuning(load: Load, variable: str, raw: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load(Role.ENTRY, **COMPOSE_NODES, **{variable: raw})
    assert [e.variable for e in caught.value.errors] == [variable]


# --- the HAProxy config -----------------------------------------------------------------------


def test_names_are_resolved_at_run_time_and_addresses_used_as_given(load: Load) -> None:
    values = load(
        Role.ENTRY, RSH_ENTRY_NODES="head,worker,10.0.0.7:8001", RSH_ENTRY_SLOTS="8"
    ).values
    config = render_haproxy_config(values)
    http = section(config, "backend nodes_http")
    assert (
        "server-template head 8 head:8000 resolvers nameservers init-addr none "
        "resolve-prefer ipv4" in http
    )
    assert any(line.startswith("server-template worker 8 worker:8000 ") for line in http)
    assert "server node_10.0.0.7_8001 10.0.0.7:8001" in http
    assert "parse-resolv-conf" in section(config, "resolvers nameservers")


def test_only_addresses_need_no_resolvers(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, RSH_ENTRY_NODES="10.0.0.7,10.0.0.8").values)
    assert "resolvers nameservers" not in config


def test_health_check_proves_the_node_routes(load: Load) -> None:
    values = load(Role.ENTRY, **COMPOSE_NODES, RSH_ENTRY_CHECK_INTER="750ms").values
    http = section(render_haproxy_config(values), "backend nodes_http")
    checks = [line for line in http if line.startswith("http-check")]
    assert checks == [
        "http-check connect proto h1",
        "http-check send meth GET uri /-/healthz ver HTTP/1.1 hdr Host entry",
        "http-check expect status 200",
        "http-check connect proto h1",
        "http-check send meth GET uri /-/routes ver HTTP/1.1 hdr Host entry",
        "http-check expect rstring '^\\{\"/'",
    ]
    default_server = next(line for line in http if line.startswith("default-server"))
    assert "check inter 750ms fall 2 rise 2" in default_server
    # A live error makes the next check decisive; it never takes a node out on its own.
    assert "observe layer4 error-limit 1 on-error sudden-death" in default_server
    # A withdrawn node's HAProxy drains as soon as the entry lets its idle connections go.
    assert "pool-purge-delay 1s" in default_server


def test_retry_rules(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, **COMPOSE_NODES).values)
    defaults = section(config, "defaults")
    assert "retry-on conn-failure empty-response" in defaults
    assert "option redispatch 1" in defaults
    assert "timeout connect 500ms" in defaults
    http = section(config, "frontend http")
    assert "http-request disable-l7-retry if !retry_safe_method || has_body" in http
    assert "acl retry_safe_method method GET HEAD OPTIONS" in http
    # gRPC calls are POSTs with a body: never replayed once sent.
    assert "http-request disable-l7-retry" in section(config, "frontend grpc")


def test_no_server_timeout_unless_asked(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, **COMPOSE_NODES).values)
    assert not any(line.startswith("timeout server") for line in lines(config))
    assert "timeout client 3600s" in section(config, "defaults")
    config = render_haproxy_config(
        load(Role.ENTRY, **COMPOSE_NODES, RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="600").values
    )
    assert "timeout server 600s" in section(config, "defaults")


def test_grpc_frontend_and_backend(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, RSH_ENTRY_NODES="head,10.0.0.7:8001").values)
    assert "bind :9000 proto h2" in section(config, "frontend grpc")
    grpc = section(config, "backend nodes_grpc")
    assert any(
        line.startswith("server-template head 16 head:9000 ")
        and line.endswith("proto h2 port 8000")
        for line in grpc
    )
    assert "server node_10.0.0.7_8001 10.0.0.7:9000 proto h2 port 8001" in grpc
    # Checked on the node's HTTP port (the server's check port) as nodes_http is, then on the
    # gRPC port with Serve's gRPC health call, over HTTP/2.
    checks = [line for line in grpc if line.startswith("http-check")]
    http_checks = [
        line for line in section(config, "backend nodes_http") if line.startswith("http-check")
    ]
    assert checks == [
        *http_checks,
        "http-check connect port 9000 proto h2",
        "http-check send meth POST uri /ray.serve.RayServeAPIService/Healthz ver HTTP/2.0 "
        "hdr content-type application/grpc hdr te trailers",
        "http-check expect hdr name grpc-status value 0",
    ]
    off = render_haproxy_config(load(Role.ENTRY, **COMPOSE_NODES, RSH_GRPC_PORT="0").values)
    assert "frontend grpc" not in off and "backend nodes_grpc" not in off


def test_nothing_administrative_beyond_loopback(load: Load) -> None:
    values = load(Role.ENTRY, **COMPOSE_NODES).values
    config = render_haproxy_config(values)
    binds = [line for line in lines(config) if line.startswith("bind ")]
    assert binds == ["bind :8000", "bind :9000 proto h2", "bind 127.0.0.1:9101"]
    assert f"stats socket {socket_path(values.state_dir)} mode 600 level admin" in lines(config)
    assert "listen stats" not in config


def test_metrics_exporter_opens_to_the_network_only_when_asked(load: Load) -> None:
    values = load(Role.ENTRY, **COMPOSE_NODES, RSH_ENTRY_METRICS_HOST="0.0.0.0").values
    metrics = section(render_haproxy_config(values), "frontend metrics")
    assert "bind 0.0.0.0:9101" in metrics, metrics
    assert "http-request use-service prometheus-exporter if { path /metrics }" in metrics
    with pytest.raises(InvalidSettings) as refused:
        load(Role.ENTRY, **COMPOSE_NODES, RSH_ENTRY_METRICS_HOST="not a host!")
    assert "RSH_ENTRY_METRICS_HOST" in str(refused.value)


# --- supervisord and the command --------------------------------------------------------------


def test_supervisord_runs_haproxy_with_a_soft_stop(load: Load) -> None:
    effective = load(
        Role.ENTRY,
        **COMPOSE_NODES,
        RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="300",
        RSH_SHUTDOWN_TIMEOUT_S="25",
    )
    parser = configparser.RawConfigParser()
    parser.read_string(render_entry_supervisor_config(effective, python="/py"))
    program = parser["program:haproxy"]
    values = effective.values
    assert shlex.split(program["command"]) == [
        "/usr/local/bin/haproxy",
        "-db",
        "-f",
        str(config_path(values.state_dir)),
    ]
    assert program["stopsignal"] == "USR1"
    # The stop is bounded by the shutdown timeout, not by hard-stop-after (390 s here).
    assert values.hard_stop_after_s == 390
    assert program["stopwaitsecs"] == "25"
    watchdog = shlex.split(parser["eventlistener:watchdog"]["command"])
    assert watchdog[-2:] == ["--program", "haproxy"]
    assert not any(name.startswith("program:ray") for name in parser.sections())


def test_entry_render_only(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    private_paths: dict[str, str],
) -> None:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RSH_ENTRY_NODES", "head,worker")
    assert main(["entry", "--render-only"]) == 0
    printed = capsys.readouterr().out.split()
    state = private_paths["RSH_STATE_DIR"]
    assert printed == [f"{state}/entry-haproxy.cfg", f"{state}/supervisord.conf"]
    assert "server-template worker" in Path(printed[0]).read_text()
    assert read_role(state) == Role.ENTRY
    assert oct(Path(state).stat().st_mode & 0o777) == "0o700"


def test_entry_refuses_without_nodes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    private_paths: dict[str, str],
) -> None:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RSH_ENTRY_NODES", raising=False)
    assert main(["entry", "--render-only"]) == 2
    assert "RSH_ENTRY_NODES" in capsys.readouterr().err
    assert not Path(private_paths["RSH_STATE_DIR"], "entry-haproxy.cfg").exists()


# --- healthcheck ------------------------------------------------------------------------------

STAT_HEADER = "# pxname,svname,status,addr,type,scur,stot,check_status\n"


def show_stat(*servers: tuple[str, str]) -> str:
    rows = [f"nodes_http,{name},{status},10.0.0.1:8000,2,0,0,L7OK" for name, status in servers]
    return STAT_HEADER + "\n".join(rows) + "\nnodes_http,BACKEND,UP,,1,0,0,\n"


@pytest.fixture
def admin_socket(load: Load) -> Iterator[tuple[EffectiveSettings, dict[str, str]]]:
    """A UNIX socket answering `show stat` like the entry's HAProxy, with `answer["stat"]`."""
    effective = load(Role.ENTRY, **COMPOSE_NODES)
    path = socket_path(effective.values.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    answer = {"stat": show_stat()}
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(answer["stat"].encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield effective, answer
    stop.set()
    thread.join()
    server.close()


class Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/-/healthz" else 404)
        self.end_headers()
        self.wfile.write(b"success")

    def log_message(self, *args: object) -> None:
        pass


def test_entry_readiness_needs_a_node_up_and_an_answer_through_it(
    load: Load,
    admin_socket: tuple[EffectiveSettings, dict[str, str]],
    free_tcp_port: Callable[[], int],
) -> None:
    effective, answer = admin_socket
    port = free_tcp_port()
    values = load(
        Role.ENTRY,
        **COMPOSE_NODES,
        RSH_HTTP_PORT=str(port),
        RSH_STATE_DIR=effective.values.state_dir,
    ).values

    answer["stat"] = show_stat(("head1", "DOWN"), ("worker1", "MAINT"), ("worker2", "DOWN"))
    (result,) = run_checks(values, Role.ENTRY, Probe.READINESS)
    assert not result.ok and "0 of 2 nodes UP" in result.detail

    answer["stat"] = show_stat(("head1", "UP"), ("worker1", "DOWN"), ("worker2", "MAINT"))
    (result,) = run_checks(values, Role.ENTRY, Probe.READINESS)
    assert not result.ok and "1 of 2 nodes UP" in result.detail  # nothing answers on port

    server = ThreadingHTTPServer(("127.0.0.1", port), Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (result,) = run_checks(values, Role.ENTRY, Probe.READINESS)
        assert result.ok, result.detail
        assert "1 of 2 nodes UP" in result.detail
    finally:
        server.shutdown()
        server.server_close()


def test_entry_liveness_without_haproxy(load: Load) -> None:
    values = load(Role.ENTRY, **COMPOSE_NODES, RAY_SERVE_HAPROXY_BINARY_PATH="/bin/true").values
    (result,) = run_checks(values, Role.ENTRY, Probe.LIVENESS)
    assert not result.ok and "not running" in result.detail


# --- limits against hostile clients (docs/edge-security.md) -----------------------------------


def test_hostile_client_limits_by_default(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, **COMPOSE_NODES).values)
    defaults = section(config, "defaults")
    assert "timeout http-request 10s" in defaults
    assert "timeout http-keep-alive 90s" in defaults
    glob = section(config, "global")
    assert "tune.h2.fe.max-concurrent-streams 100" in glob
    assert "tune.h2.fe.glitches-threshold 1000" in glob
    http, grpc = section(config, "frontend http"), section(config, "frontend grpc")
    # Slow bodies wait at the entry on the HTTP port only: gRPC client streams must flow.
    assert "option http-buffer-request" in http
    assert "option http-buffer-request" not in grpc
    for frontend in (http, grpc):
        assert (
            "http-request set-log-level silent if { var(sess.rsh_errors,0) -m int gt 10 }"
            in frontend
        )
        assert "http-request silent-drop if { var(sess.rsh_bad,0) -m int ge 1000 }" in frontend
        counted = [line for line in frontend if line.startswith("http-after-response set-var")]
        assert len(counted) == 2, counted
        # Off by default: behind Docker's port proxy every client has the same address.
        assert not any("track-sc0" in line for line in frontend)
    assert "backend per_client" not in config


def test_hostile_client_limits_follow_the_settings(load: Load) -> None:
    values = load(
        Role.ENTRY,
        **COMPOSE_NODES,
        RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S="5",
        RSH_ENTRY_TIMEOUT_KEEP_ALIVE_S="30",
        RSH_ENTRY_BUFFER_REQUEST_BODY="0",
        RSH_ENTRY_H2_MAX_CONCURRENT_STREAMS="50",
        RSH_ENTRY_H2_GLITCHES_THRESHOLD="0",
        RSH_ENTRY_LOG_ERRORS_PER_CONNECTION="0",
        RSH_ENTRY_MAX_BAD_REQUESTS_PER_CONNECTION="0",
        RSH_ENTRY_PER_CLIENT_MAXCONN="20",
    ).values
    config = render_haproxy_config(values)
    assert "timeout http-request 5s" in section(config, "defaults")
    assert "timeout http-keep-alive 30s" in section(config, "defaults")
    assert "tune.h2.fe.max-concurrent-streams 50" in section(config, "global")
    assert "glitches-threshold" not in config
    assert "http-buffer-request" not in config
    assert "rsh_errors" not in config and "rsh_bad" not in config
    assert section(config, "backend per_client") == [
        "stick-table type ipv6 size 1m expire 60s store conn_cur"
    ]
    for name in ("frontend http", "frontend grpc"):
        frontend = section(config, name)
        assert frontend[2:4] == [
            "tcp-request connection track-sc0 src table per_client",
            "tcp-request connection reject if { sc0_conn_cur(per_client) gt 20 }",
        ], frontend


@pytest.mark.parametrize(
    ("variable", "raw", "allowed"),
    [
        ("RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S", "0", "integer 1-3600 seconds"),
        ("RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S", "10s", "integer 1-3600 seconds"),
        ("RSH_ENTRY_TIMEOUT_KEEP_ALIVE_S", "3601", "integer 1-3600 seconds"),
        ("RSH_ENTRY_BUFFER_REQUEST_BODY", "yes", "0 or 1"),
        ("RSH_ENTRY_H2_MAX_CONCURRENT_STREAMS", "0", "integer 1-10000"),
        ("RSH_ENTRY_H2_GLITCHES_THRESHOLD", "-1", "integer 0-1000000"),
        ("RSH_ENTRY_LOG_ERRORS_PER_CONNECTION", "many", "integer 0-1000000"),
        ("RSH_ENTRY_MAX_BAD_REQUESTS_PER_CONNECTION", "1e3", "integer 0-1000000"),
        ("RSH_ENTRY_PER_CLIENT_MAXCONN", "2000000", "integer 0-1000000"),
    ],
)
def test_bad_hostile_client_limits(load: Load, variable: str, raw: str, allowed: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load(Role.ENTRY, **COMPOSE_NODES, **{variable: raw})
    (error,) = caught.value.errors
    assert error.variable == variable
    assert str(error).startswith(f"{variable}={raw!r}") and allowed in str(error), str(error)


def test_bad_limit_exits_2_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    private_paths: dict[str, str],
) -> None:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RSH_ENTRY_NODES", "head,worker")
    monkeypatch.setenv("RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S", "0")
    assert main(["entry", "--render-only"]) == 2
    err = capsys.readouterr().err
    assert "RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S='0'" in err and "integer 1-3600 seconds" in err, err
    assert not (Path(private_paths["RSH_STATE_DIR"]) / "entry-haproxy.cfg").exists()
