"""serve-up against a stand-in Ray: the Serve config's HTTP options reach serve.start (Serve
ignores them in a later deploy), a head without applications counts as started, and
applications HAProxy mode serves differently are named in the log before anything starts."""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ray_serve_haproxy import config_record, serve_up
from ray_serve_haproxy.serve_up import NO_ROUTES_MESSAGE, ServeUpError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


class Healthz(BaseHTTPRequestHandler):
    """/-/healthz answers `answer`, /-/routes `routes` (HAProxy's generated rules)."""

    answer: tuple[int, bytes] = (200, b"success")
    routes: tuple[int, bytes] = (200, b'{"/a":"a"}')

    def do_GET(self) -> None:
        status, body = self.routes if self.path == "/-/routes" else self.answer
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
    """`ray`, `ray.serve`, the GCS's internal KV and the dashboard SDK as serve-up imports them:
    Serve runs what was deployed last (`running`: name -> config; `statuses`: name -> (status,
    message) other than RUNNING), every deploy is recorded in `deployed`."""
    calls: dict[str, Any] = {"deployed": [], "running": {}, "statuses": {}, "kv": {}}
    ray = types.ModuleType("ray")
    ray.init = lambda **kwargs: None  # type: ignore[attr-defined]
    ray.shutdown = lambda: None  # type: ignore[attr-defined]
    ray.nodes = lambda: []  # type: ignore[attr-defined]
    serve = types.ModuleType("ray.serve")

    def start(**kwargs: Any) -> None:
        calls["start"] = kwargs

    def status() -> Any:
        apps = {
            name: types.SimpleNamespace(
                status=calls["statuses"].get(name, ("RUNNING", ""))[0],
                message=calls["statuses"].get(name, ("RUNNING", ""))[1],
            )
            for name in calls["running"]
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
            calls["running"] = {a["name"]: a for a in config["applications"]}

        def get_serve_details(self) -> dict[str, Any]:
            return {
                "applications": {
                    name: {"deployed_app_config": config}
                    for name, config in calls["running"].items()
                }
            }

    sdk.ServeSubmissionClient = Client  # type: ignore[attr-defined]
    kv = types.ModuleType("ray.experimental.internal_kv")
    kv._internal_kv_get = lambda key, namespace=None: calls["kv"].get((namespace, key))  # type: ignore[attr-defined]
    kv._internal_kv_put = lambda key, value, overwrite=True, namespace=None: calls[  # type: ignore[attr-defined]
        "kv"
    ].__setitem__((namespace, key), value)
    kv._internal_kv_del = lambda key, namespace=None: calls["kv"].pop((namespace, key))  # type: ignore[attr-defined]
    for name, module in (
        ("ray", ray),
        ("ray.serve", serve),
        ("ray.dashboard.modules.serve.sdk", sdk),
        ("ray.experimental.internal_kv", kv),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(serve_up, "MIN_HEALTHZ_WAIT_S", 1.0)
    monkeypatch.setattr(serve_up, "POLL_S", 0.05)
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


def test_a_proxy_without_routes_is_not_ready(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    """A restarted node's HAProxy may answer /-/healthz 200 before Serve sent it its routes
    (and then 404 for every path): not ready until /-/routes lists one."""
    port, handler = healthz
    handler.routes = (200, b"{}")
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n  - {name: a, route_prefix: /a, import_path: 'm:app'}\n")
    with pytest.raises(ServeUpError, match=r"with routes listed \(last: /-/routes: 200 '\{\}'\)"):
        run(port, config, timeout_s=1)


APP_A = "  - {name: a, route_prefix: /a, import_path: 'm:app'}\n"
APP_B = "  - {name: b, route_prefix: /b, import_path: 'm:b'}\n"


def recorded(fake_ray: dict[str, Any]) -> dict[str, Any] | None:
    raw = fake_ray["kv"].get((config_record.RECORD_NAMESPACE, config_record.RECORD_KEY))
    return json.loads(raw) if raw is not None else None


def test_the_declared_config_is_deployed_when_it_changed_and_only_then(
    tmp_path: Path,
    fake_ray: dict[str, Any],
    healthz: tuple[int, type[Healthz]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A restart with the same file deploys nothing (so a `serve deploy` made since stays); a
    changed file is deployed, and the log says what it adds, changes and removes."""
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n" + APP_A)
    assert "RUNNING: a" in run(port, config)
    assert len(fake_ray["deployed"]) == 1
    assert recorded(fake_ray)["state"] == "applied"
    assert "a new cluster" in capsys.readouterr().out

    # Through Serve's API: b added. The head restarts with the same file: nothing deployed.
    fake_ray["running"]["b"] = {"name": "b", "route_prefix": "/b", "import_path": "m:b"}
    summary = run(port, config)
    assert len(fake_ray["deployed"]) == 1
    assert "recovered applications RUNNING: a, b" in summary
    out = capsys.readouterr().out
    assert "unchanged since it was applied: not deploying it" in out
    assert "Serve's applications keep their replicas: a, b" in out

    # The file changes: a removed, b declared differently. The file wins.
    config.write_text("applications:\n" + APP_B.replace("'m:b'", "'m:b2'"))
    assert "RUNNING: b" in run(port, config)
    assert len(fake_ray["deployed"]) == 2
    out = capsys.readouterr().out
    assert "changed since it was last applied: deploying it" in out
    assert "the file changed since it was applied" in out and "adds b; removes a" in out
    assert 'changes b (import_path: "m:b" -> "m:b2"); removes a' in out
    assert (
        "this replaces what was changed through Serve's API since: b (added through the API)" in out
    )
    assert recorded(fake_ray)["config"]["applications"][0]["import_path"] == "m:b2"


def test_a_cluster_without_a_record_keeps_what_matches_the_file(
    tmp_path: Path,
    fake_ray: dict[str, Any],
    healthz: tuple[int, type[Healthz]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cluster an older image started (Serve recovered applications, no record): nothing is
    deployed when they match the file, and the file is recorded as applied."""
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n" + APP_A)
    fake_ray["running"] = {"a": {"name": "a", "route_prefix": "/a", "import_path": "m:app"}}
    run(port, config)
    assert fake_ray["deployed"] == []
    assert recorded(fake_ray)["state"] == "applied"
    assert "Serve's applications match it: not deploying it" in capsys.readouterr().out


def test_without_a_declared_config_nothing_is_deployed_or_removed_and_the_record_goes(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n" + APP_A)
    run(port, config)
    assert recorded(fake_ray) is not None
    assert "applications RUNNING: a" in run(port, None)
    assert len(fake_ray["deployed"]) == 1 and list(fake_ray["running"]) == ["a"]
    assert recorded(fake_ray) is None


def test_force_deploys_an_unchanged_file(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n" + APP_A)
    run(port, config)
    run(port, config, force=True)
    assert len(fake_ray["deployed"]) == 2


def test_a_failed_deploy_names_the_app_and_its_error_and_is_retried(
    tmp_path: Path,
    fake_ray: dict[str, Any],
    healthz: tuple[int, type[Healthz]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """DEPLOY_FAILED: serve-failed names the application with the gist of Serve's message (the
    whole traceback goes to the log); the record stays `submitted`, so the next start deploys
    the same file again (e.g. after the module was fixed in a new image)."""
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n" + APP_A + APP_B)
    traceback_text = (
        "Deploying app 'b' failed with exception:\nTraceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ModuleNotFoundError: No module named 'm'\n"
    )
    fake_ray["statuses"] = {"b": ("DEPLOY_FAILED", traceback_text)}
    state_dir = tmp_path / "state"
    code = serve_up.run(
        http_port=port,
        dashboard_url="http://127.0.0.1:1",
        state_dir=str(state_dir),
        timeout_s=5,
        config_path=str(config),
    )
    assert code == 1
    failed = (state_dir / "serve-failed").read_text()
    assert failed == (
        "applications not RUNNING: b=DEPLOY_FAILED (ModuleNotFoundError: No module named 'm'), "
        "1 of 2 RUNNING\n"
    )
    assert 'File "x.py", line 1' in capsys.readouterr().out
    assert recorded(fake_ray)["state"] == "submitted"
    fake_ray["statuses"] = {}
    assert (
        serve_up.run(
            http_port=port,
            dashboard_url="http://127.0.0.1:1",
            state_dir=str(state_dir),
            timeout_s=5,
            config_path=str(config),
        )
        == 0
    )
    assert len(fake_ray["deployed"]) == 2
    assert "never seen RUNNING: deploying it again" in capsys.readouterr().out
    assert recorded(fake_ray)["state"] == "applied"


def test_progress_names_what_is_not_running_yet(
    tmp_path: Path, fake_ray: dict[str, Any], healthz: tuple[int, type[Healthz]]
) -> None:
    port, _ = healthz
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n" + APP_A + APP_B)
    fake_ray["statuses"] = {"b": ("DEPLOYING", "")}
    seen: list[str] = []
    with pytest.raises(ServeUpError, match=r"not RUNNING after 1s: b=DEPLOYING, 1 of 2 RUNNING"):
        run(port, config, timeout_s=1, progress=seen.append)
    assert any(
        text.startswith("waiting for applications (")
        and text.endswith("b=DEPLOYING, 1 of 2 RUNNING")
        for text in seen
    ), seen
    assert serve_up.app_states({}, ["a"]) == "a=missing, 0 of 1 RUNNING"
