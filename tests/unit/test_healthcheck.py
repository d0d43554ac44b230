"""Liveness from a fake /proc, readiness against a local HTTP server and the Serve markers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.healthcheck import Probe, liveness, readiness, run_checks
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role
from ray_serve_haproxy.state_dir import SERVE_FAILED, SERVE_PROGRESS, SERVE_READY, mark

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]


def fake_proc(root: Path, processes: dict[int, str]) -> Path:
    for pid, comm in processes.items():
        directory = root / str(pid)
        directory.mkdir(parents=True)
        (directory / "comm").write_text(comm + "\n")
        (directory / "stat").write_text(f"{pid} ({comm}) S 1 1 1 0 -1\n")
    return root


def test_liveness_head_needs_raylet_and_gcs(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {10: "gcs_server", 11: "raylet", 12: "python"})
    assert liveness(Role.HEAD, proc).ok
    assert liveness(Role.WORKER, proc).ok
    only_raylet = fake_proc(tmp_path / "b", {11: "raylet"})
    result = liveness(Role.HEAD, only_raylet)
    assert not result.ok and "gcs_server" in result.detail
    assert liveness(Role.WORKER, only_raylet).ok
    assert liveness(None, only_raylet).ok  # unknown role: raylet is enough


def test_liveness_ignores_zombies(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {11: "raylet"})
    (proc / "11" / "stat").write_text("11 (raylet) Z 1 1 1 0 -1\n")
    assert not liveness(Role.WORKER, proc).ok


class Healthz(BaseHTTPRequestHandler):
    """Ray's HAProxy: /-/healthz with `status`, /-/routes with `routes` (JSON)."""

    status = 200
    routes = b'{"/hello":"hello"}'

    def do_GET(self) -> None:
        if self.path == "/-/routes":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(self.routes)
            return
        code = self.status if self.path == "/-/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"success" if code == 200 else b"Service Unavailable")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server(free_tcp_port: Callable[[], int]) -> Iterator[tuple[int, type[Healthz]]]:
    handler = type("Handler", (Healthz,), {"status": 200, "routes": Healthz.routes})
    server = ThreadingHTTPServer(("127.0.0.1", free_tcp_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def test_readiness_asks_healthz(load: Load, http_server: tuple[int, type[Healthz]]) -> None:
    port, handler = http_server
    values = load(RSH_HTTP_PORT=str(port)).values
    assert readiness(values, Role.WORKER).ok
    handler.status = 503
    result = readiness(values, Role.WORKER)
    assert not result.ok and "503" in result.detail


def test_readiness_needs_routes_not_just_healthz(
    load: Load, http_server: tuple[int, type[Healthz]]
) -> None:
    # Ray's HAProxy on a restarted head: /-/healthz 200 with no backend yet, 404 for every path.
    port, handler = http_server
    handler.routes = b"{}"
    values = load(RSH_HTTP_PORT=str(port)).values
    result = readiness(values, Role.HEAD)
    assert not result.ok and "/-/routes lists no route" in result.detail
    handler.routes = b'{"/hello":"hello","/echo":"echo"}'
    assert readiness(values, Role.HEAD).ok


def test_readiness_without_a_listener(load: Load, free_tcp_port: Callable[[], int]) -> None:
    port = free_tcp_port()
    result = readiness(load(RSH_HTTP_PORT=str(port)).values, None)
    assert not result.ok and "did not answer" in result.detail


def test_head_readiness_consults_the_serve_markers(
    load: Load, http_server: tuple[int, type[Healthz]], tmp_path: Path
) -> None:
    port, _ = http_server
    config = tmp_path / "serve.yaml"
    config.write_text("applications: []\n")
    values = load(RSH_HTTP_PORT=str(port), RSH_SERVE_CONFIG=str(config)).values
    result = readiness(values, Role.HEAD)
    assert not result.ok and "is not deployed yet: serve-up has not started" in result.detail
    # While serve-up works, the probe says what it waits for (serve_up.app_states).
    mark(values.state_dir, SERVE_PROGRESS, "waiting for applications (250 s left): b=DEPLOYING")
    result = readiness(values, Role.HEAD)
    assert f"{config} is not deployed yet: waiting for applications (250 s left): b=DEPLOYING" in (
        result.detail
    )
    mark(values.state_dir, SERVE_READY, "ok")
    assert readiness(values, Role.HEAD).ok
    mark(values.state_dir, SERVE_FAILED, "application 'hello' failed to deploy: boom")
    result = readiness(values, Role.HEAD)
    assert not result.ok and "boom" in result.detail
    # Markers are the head's business: a worker only looks at HAProxy.
    assert readiness(values, Role.WORKER).ok


def test_head_without_serve_config_needs_no_ready_marker(
    load: Load, http_server: tuple[int, type[Healthz]]
) -> None:
    port, _ = http_server
    assert readiness(load(RSH_HTTP_PORT=str(port)).values, Role.HEAD).ok


def test_default_probe_on_a_worker_without_haproxy_is_liveness_only(load: Load) -> None:
    values = load(RAY_SERVE_ENABLE_HA_PROXY="1").values  # no HAProxy process runs in the test
    names = [r.name for r in run_checks(values, Role.WORKER, Probe.DEFAULT)]
    assert names == ["liveness"]
    names = [r.name for r in run_checks(values, Role.HEAD, Probe.DEFAULT)]
    assert names == ["liveness", "readiness"]
    assert [r.name for r in run_checks(values, Role.WORKER, Probe.READINESS)] == ["readiness"]


def test_cli_exit_status(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    http_server: tuple[int, type[Healthz]],
    tmp_path: Path,
    token_file: Path,
) -> None:
    port, _ = http_server
    monkeypatch.setenv("RSH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RSH_HTTP_PORT", str(port))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert main(["healthcheck", "--readiness"]) == 0
    assert "readiness: OK" in capsys.readouterr().out
    # No Ray runs in the unit tests: liveness fails and says what is missing.
    assert main(["healthcheck", "--liveness", "--role", "head"]) == 1
    assert "raylet" in capsys.readouterr().out
