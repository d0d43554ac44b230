"""What `status` shows of Serve on the head, and the gist of Serve's messages that serve-up and
the healthcheck print (an import error arrives as a whole traceback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ray_serve_haproxy.serve_apps import serve_up_state, serve_view, short_message
from ray_serve_haproxy.state_dir import SERVE_FAILED, SERVE_PROGRESS, SERVE_READY, mark

pytestmark = pytest.mark.unit

# Serve 2.60's message for an application whose import failed (its build task's traceback).
BUILD_FAILED = """Deploying app 'broken' failed with exception:
Traceback (most recent call last):
  File "/opt/venv/lib/python3.11/site-packages/ray/serve/_private/application_state.py", line 1,
    app = call_user_app_builder_with_args_if_necessary(import_attr(import_path), args)
  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
ModuleNotFoundError: No module named 'no_such_module'
"""


def test_short_message_is_the_raised_line_of_a_traceback() -> None:
    assert short_message(BUILD_FAILED) == "ModuleNotFoundError: No module named 'no_such_module'"
    assert short_message("Failed to update the deployments ['Hello'].") == (
        "Failed to update the deployments ['Hello']."
    )
    assert short_message("") == ""
    assert len(short_message("ValueError: " + "x" * 1000)) == 300


def test_serve_up_state_reads_the_markers(tmp_path: Path) -> None:
    assert serve_up_state(str(tmp_path)) == "not started (no marker)"
    mark(str(tmp_path), SERVE_PROGRESS, "starting Serve")
    assert serve_up_state(str(tmp_path)) == "working: starting Serve"
    mark(str(tmp_path), SERVE_READY, "Serve started")
    assert serve_up_state(str(tmp_path)) == "ready: Serve started"
    mark(str(tmp_path), SERVE_FAILED, "boom")
    assert serve_up_state(str(tmp_path)) == "failed: boom"


class Dashboard(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer t":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps(
            {
                "applications": {
                    "hello": {"status": "RUNNING", "message": ""},
                    "broken": {"status": "DEPLOY_FAILED", "message": BUILD_FAILED},
                }
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dashboard() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Dashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_serve_view_names_each_application_with_status_and_gist(
    tmp_path: Path, dashboard: str
) -> None:
    mark(str(tmp_path), SERVE_FAILED, "applications not RUNNING: broken=DEPLOY_FAILED (...)")
    view = serve_view(str(tmp_path), dashboard, {"Authorization": "Bearer t"})
    assert view.render().splitlines() == [
        "Serve (serve-up failed: applications not RUNNING: broken=DEPLOY_FAILED (...))",
        "  APPLICATION  STATUS         MESSAGE",
        "  broken       DEPLOY_FAILED  ModuleNotFoundError: No module named 'no_such_module'",
        "  hello        RUNNING",
    ]
    assert view.as_json()["applications"]["broken"]["status"] == "DEPLOY_FAILED"
    refused = serve_view(str(tmp_path), dashboard, {})
    assert refused.error is not None and "401" in refused.error
    assert "applications unknown" in refused.render()
    assert serve_view(str(tmp_path), dashboard, None).error == "no token to ask the dashboard with"
