"""serve-up against a stand-in Ray: the Serve config's HTTP options reach serve.start (Serve
ignores them in a later deploy), a head without applications counts as started, and
applications HAProxy mode serves differently are named in the log before anything starts."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ray_serve_haproxy import serve_up
from ray_serve_haproxy.serve_up import NO_ROUTES_MESSAGE, ServeUpError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


class Healthz(BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"success")

    def do_GET(self) -> None:
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def healthz() -> Iterator[tuple[int, type[Healthz]]]:
    handler = type("Handler", (Healthz,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`ray`, `ray.serve` and the dashboard SDK as serve-up imports them, recording calls."""
    calls: dict[str, Any] = {"deployed": []}
    ray = types.ModuleType("ray")
    ray.init = lambda **kwargs: None  # type: ignore[attr-defined]
    ray.shutdown = lambda: None  # type: ignore[attr-defined]
    serve = types.ModuleType("ray.serve")

    def start(**kwargs: Any) -> None:
        calls["start"] = kwargs

    def status() -> Any:
        apps = {
            name: types.SimpleNamespace(status="RUNNING", message="")
            for config in calls["deployed"]
            for name in (a["name"] for a in config["applications"])
        }
        return types.SimpleNamespace(applications=apps)

    serve.start = start  # type: ignore[attr-defined]
    serve.status = status  # type: ignore[attr-defined]
    sdk = types.ModuleType("ray.dashboard.modules.serve.sdk")

    class Client:
        def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
            pass

        def deploy_applications(self, config: dict[str, Any]) -> None:
            calls["deployed"].append(config)

    sdk.ServeSubmissionClient = Client  # type: ignore[attr-defined]
    for name, module in (
        ("ray", ray),
        ("ray.serve", serve),
        ("ray.dashboard.modules.serve.sdk", sdk),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(serve_up, "MIN_HEALTHZ_WAIT_S", 1.0)
    return calls


def run(port: int, config: Path | None, timeout_s: int = 5, **kwargs: Any) -> str:
    return serve_up.serve_up(
        http_port=port,
        dashboard_url="http://127.0.0.1:1",
        timeout_s=timeout_s,
        config_path=str(config) if config else None,
        **kwargs,
    )


def test_the_configs_http_options_go_to_serve_start(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text(
        "http_options: {request_timeout_s: 2, keep_alive_timeout_s: 30, host: 127.0.0.1}\n"
        "applications:\n  - {name: a, route_prefix: /a, import_path: 'm:app'}\n"
    )
    summary = run(port, config)
    assert fake_ray["start"]["http_options"] == {
        "request_timeout_s": 2,
        "keep_alive_timeout_s": 30,
        "host": "0.0.0.0",
        "port": port,
    }
    assert fake_ray["deployed"][0]["http_options"] == fake_ray["start"]["http_options"]
    assert "RUNNING: a" in summary


def test_without_a_config_serve_starts_on_host_and_port_only(
    fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    port, handler = healthz
    handler.answer = (503, NO_ROUTES_MESSAGE.encode())
    summary = run(port, None)
    assert fake_ray["start"]["http_options"] == {"host": "0.0.0.0", "port": port}
    assert fake_ray["deployed"] == []
    assert "no application yet (/-/healthz answers 503" in summary


def test_a_config_without_applications_counts_as_started(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    port, handler = healthz
    handler.answer = (503, NO_ROUTES_MESSAGE.encode())
    config = tmp_path / "serve.yaml"
    config.write_text("http_options: {request_timeout_s: 2}\napplications: []\n")
    summary = run(port, config)
    assert fake_ray["start"]["http_options"]["request_timeout_s"] == 2
    assert fake_ray["deployed"] == []  # nothing to deploy
    assert "no application yet" in summary


def test_applications_that_never_answer_still_fail(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    """With applications deployed, the no-routes 503 is a failure, as any other non-200."""
    port, handler = healthz
    handler.answer = (503, NO_ROUTES_MESSAGE.encode())
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n  - {name: a, route_prefix: /a, import_path: 'm:app'}\n")
    with pytest.raises(ServeUpError, match="did not answer 200"):
        run(port, config, timeout_s=1)


def test_haproxy_mode_names_multiplexed_ingress_before_starting(
    fake_ray: dict[str, Any],
    healthz: tuple[int, type[Healthz]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, _ = healthz
    apps = REPO / "tests" / "differential" / "apps"
    run(port, apps / "serve_config.yaml", haproxy_mode=True, pythonpath=str(apps))
    out = capsys.readouterr().out
    warning = out.index("serve-up: WARNING: application 'mux' relies on model multiplexing")
    assert warning < out.index("serve-up: starting Serve")
    assert "'muxhandle'" not in out
    run(port, apps / "serve_config.yaml", haproxy_mode=False, pythonpath=str(apps))
    assert "WARNING" not in capsys.readouterr().out
