"""Serve's applications as the operator sees them on the head: `status` lists each with its
status and the gist of Serve's message next to serve-up's own state (its markers); serve-up and
the healthcheck cut Serve's messages (an import error comes as a whole traceback) to the line
that says what failed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import requests

from .settings import Settings
from .state_dir import SERVE_FAILED, SERVE_PROGRESS, SERVE_READY, read_marker
from .table import render_table

GIST_CHARS = 300
APPLICATIONS_PATH = "/api/serve/applications/"
# The line of a traceback that names what was raised: `ModuleNotFoundError: No module ...`.
RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Timeout)\b(: .*)?$")


def short_message(message: str) -> str:
    """The gist of a Serve status message: in a traceback, the last line naming what was
    raised; else the first line. At most GIST_CHARS."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    raised = [line for line in lines if RAISED.match(line)]
    gist = raised[-1] if raised else lines[0]
    return gist if len(gist) <= GIST_CHARS else gist[: GIST_CHARS - 3] + "..."


def serve_up_state(state_dir: str) -> str:
    """serve-up's own state from its markers, as one line."""
    for name, label in (
        (SERVE_FAILED, "failed"),
        (SERVE_READY, "ready"),
        (SERVE_PROGRESS, "working"),
    ):
        text = read_marker(state_dir, name)
        if text is not None:
            return f"{label}: {text}"
    return "not started (no marker)"


@dataclass
class ServeView:
    serve_up: str
    applications: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> status/message
    error: str | None = None  # why Serve's applications could not be read

    def as_json(self) -> dict[str, Any]:
        return {"serve_up": self.serve_up, "applications": self.applications, "error": self.error}

    def render(self) -> str:
        out = [f"Serve (serve-up {self.serve_up})"]
        if self.error:
            out.append(f"  applications unknown: {self.error}")
        elif not self.applications:
            out.append("  no application")
        else:
            rows = [
                [name, app["status"], short_message(app["message"])]
                for name, app in sorted(self.applications.items())
            ]
            out.append(render_table(["APPLICATION", "STATUS", "MESSAGE"], rows, indent="  "))
        return "\n".join(out) + "\n"


def read_applications(
    dashboard_url: str, headers: dict[str, str], timeout_s: float = 5.0
) -> dict[str, dict[str, str]]:
    """name -> {status, message} from the dashboard's Serve API. Raises requests' errors and
    ValueError."""
    response = requests.get(dashboard_url + APPLICATIONS_PATH, headers=headers, timeout=timeout_s)
    if response.status_code != 200:
        raise ValueError(f"{response.status_code} {response.text[:200]!r}")
    apps = response.json().get("applications") or {}
    return {
        str(name): {"status": str(app.get("status")), "message": str(app.get("message") or "")}
        for name, app in apps.items()
    }


def serve_view(state_dir: str, dashboard_url: str, headers: dict[str, str] | None) -> ServeView:
    """serve-up's state and Serve's applications (headers None: no token to ask with)."""
    view = ServeView(serve_up_state(state_dir))
    if headers is None:
        view.error = "no token to ask the dashboard with"
        return view
    try:
        view.applications = read_applications(dashboard_url, headers)
    except (requests.RequestException, ValueError) as exc:
        view.error = f"{dashboard_url}{APPLICATIONS_PATH}: {exc}"
    return view


def head_view(values: Settings) -> ServeView:
    """serve_view of this head, asking its dashboard with the cluster's token."""
    from .auth_token import TokenFileError, bearer_headers, cluster_token
    from .supervisor_config import dashboard_url

    try:
        token = cluster_token(values.auth_mode, values.auth_token, values.auth_token_path)
        headers: dict[str, str] | None = bearer_headers(token)
    except TokenFileError:
        headers = None
    url = dashboard_url(values.dashboard_host, values.dashboard_port)
    return serve_view(values.state_dir, url, headers)
