"""Liveness and readiness for Docker HEALTHCHECK and Kubernetes probes.

Liveness: Ray's daemons run (raylet; on the head also gcs_server), read from /proc.
Readiness: HAProxy on this node answers `/-/healthz` on 127.0.0.1:RSH_HTTP_PORT with 200 and lists
at least one route on `/-/routes`; on the head also no `serve-failed` marker and, when
RSH_SERVE_CONFIG is set, a `serve-ready` marker. Until then the output says why, from serve-up's
markers (files: the probe runs every 10 s and must stay quick): which applications are not
RUNNING, each with its Serve status and the gist of its message, or `missing`.
Entry (role `entry`): its HAProxy runs; at least one node is UP in its view and `/-/healthz`
through it answers 200.
The role comes from RSH_STATE_DIR/role, written by `head` / `worker` (or `--role`); without one
(Ray started by something else, e.g. KubeRay) only the role-independent checks apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import requests

from .processes import PROC, haproxy_processes, pids_by_comm
from .settings import Settings
from .settings_loader import Role
from .state_dir import SERVE_FAILED, SERVE_PROGRESS, SERVE_READY, read_marker

HTTP_TIMEOUT_S = 2.0


class Probe(StrEnum):
    LIVENESS = "liveness"
    READINESS = "readiness"
    DEFAULT = "default"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {'OK' if self.ok else 'FAIL'} - {self.detail}"


def liveness(role: Role | None, proc_root: Path = PROC) -> CheckResult:
    needed = ["raylet", *(["gcs_server"] if role == Role.HEAD else [])]
    found = pids_by_comm(needed, proc_root)
    missing = [name for name in needed if not found[name]]
    if missing:
        return CheckResult("liveness", False, f"not running: {', '.join(missing)}")
    running = ", ".join(f"{name} (pid {found[name][0]})" for name in needed)
    return CheckResult("liveness", True, running)


def readiness(values: Settings, role: Role | None) -> CheckResult:
    problems = []
    if role == Role.HEAD:
        failed = read_marker(values.state_dir, SERVE_FAILED)
        if failed is not None:
            problems.append(f"serve-up failed: {failed}")
        elif values.serve_config and read_marker(values.state_dir, SERVE_READY) is None:
            doing = read_marker(values.state_dir, SERVE_PROGRESS) or "serve-up has not started"
            problems.append(f"{values.serve_config} is not deployed yet: {doing}")
    url = f"http://127.0.0.1:{values.http_port}/-/healthz"
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_S)
        if response.status_code != 200:
            problems.append(f"{url} answered {response.status_code} {response.text[:120]!r}")
        else:
            routes_problem = _routes_problem(values.http_port)
            if routes_problem:
                problems.append(routes_problem)
    except requests.RequestException as exc:
        problems.append(f"{url} did not answer ({type(exc).__name__})")
    if problems:
        return CheckResult("readiness", False, "; ".join(problems))
    return CheckResult("readiness", True, f"{url} answered 200 and /-/routes lists routes")


def _routes_problem(http_port: int) -> str | None:
    """Why HAProxy does not route yet, or None. Ray's HAProxy on the head answers /-/healthz
    with 200 while it has no backends at all (the head counts as "always ready"), and answers
    every path with 404 then: a node is ready only once /-/routes lists a route."""
    url = f"http://127.0.0.1:{http_port}/-/routes"
    response = requests.get(url, timeout=HTTP_TIMEOUT_S)
    try:
        routes = response.json() if response.status_code == 200 else None
    except ValueError:
        routes = None
    if not isinstance(routes, dict) or not routes:
        return f"{url} lists no route ({response.status_code} {response.text[:120]!r})"
    return None


def entry_liveness(values: Settings) -> CheckResult:
    pids = haproxy_processes(values.haproxy_binary_path or None)
    if not pids:
        return CheckResult("liveness", False, "the entry's HAProxy is not running")
    return CheckResult("liveness", True, f"haproxy (pid {pids[0]})")


def entry_readiness(values: Settings) -> CheckResult:
    """The entry's HAProxy has at least one node UP, and a request through it reaches one."""
    from .entry import HTTP_BACKEND, socket_path
    from .haproxy_stats import parse_show_stat, query

    sock = socket_path(values.state_dir)
    try:
        _, backends = parse_show_stat(query(str(sock), "show stat", timeout_s=HTTP_TIMEOUT_S))
    except (OSError, ValueError) as exc:
        return CheckResult("readiness", False, f"no answer on {sock} ({type(exc).__name__})")
    # Slots of a name that resolved to fewer addresses stay in MAINT: not nodes.
    nodes = [
        server
        for backend in backends
        if backend.name == HTTP_BACKEND
        for server in backend.servers
        if not server.status.startswith("MAINT")
    ]
    up = [server for server in nodes if server.status.startswith("UP")]
    counts = f"{len(up)} of {len(nodes)} nodes UP"
    if not up:
        return CheckResult("readiness", False, f"{counts}: no node serves yet")
    url = f"http://127.0.0.1:{values.http_port}/-/healthz"
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        return CheckResult("readiness", False, f"{counts}; {url} did not answer ({exc})")
    if response.status_code != 200:
        return CheckResult("readiness", False, f"{counts}; {url} answered {response.status_code}")
    return CheckResult("readiness", True, f"{counts}; {url} through the entry answered 200")


def haproxy_runs_here(values: Settings) -> bool:
    return bool(values.enable_ha_proxy and haproxy_processes(values.haproxy_binary_path or None))


def run_checks(values: Settings, role: Role | None, probe: Probe) -> list[CheckResult]:
    """The checks `probe` asks for; by default readiness only where HAProxy runs (always on
    the head, which is the ingress; on a worker once Serve put an HAProxy there)."""
    if role == Role.ENTRY:
        return [
            check(values)
            for check, probes in (
                (entry_liveness, (Probe.LIVENESS, Probe.DEFAULT)),
                (entry_readiness, (Probe.READINESS, Probe.DEFAULT)),
            )
            if probe in probes
        ]
    results = []
    if probe in (Probe.LIVENESS, Probe.DEFAULT):
        results.append(liveness(role))
    wants_readiness = probe == Probe.READINESS or (
        probe == Probe.DEFAULT and (role == Role.HEAD or haproxy_runs_here(values))
    )
    if wants_readiness:
        results.append(readiness(values, role))
    return results
