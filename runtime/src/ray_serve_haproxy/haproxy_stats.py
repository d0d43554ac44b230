"""HAProxy's own view, from its admin socket: `show info` and `show stat`, for `status`.

Ray 2.60 puts the socket at <dirname(RAY_SERVE_HAPROXY_SOCKET_PATH)>/<node id>/<name>; the
exact configured path is accepted too. A socket left by an earlier run answers nothing and is
reported as stale.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import socket
import stat
from dataclasses import asdict, dataclass, field
from typing import Any

from .table import render_table

# `show stat` row types.
TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = "0", "1", "2"


def query(socket_path: str, command: str, timeout_s: float = 5.0) -> str:
    """Sends one command to an HAProxy admin socket and returns the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(socket_path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def parse_show_info(text: str) -> dict[str, str]:
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            info[key.strip()] = value.strip()
    return info


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0


@dataclass(frozen=True)
class Server:
    name: str
    status: str  # UP, DOWN, MAINT, DRAIN, "UP 1/2", NOLB, no check...
    address: str
    current_sessions: int
    total_sessions: int
    check_status: str
    weight: int
    last_change_s: int


@dataclass(frozen=True)
class Backend:
    name: str
    status: str
    current_sessions: int
    total_sessions: int
    servers: list[Server] = field(default_factory=list)


@dataclass(frozen=True)
class Frontend:
    name: str
    status: str
    current_sessions: int
    total_sessions: int


def parse_show_stat(text: str) -> tuple[list[Frontend], list[Backend]]:
    """Frontends and backends (with their servers) from `show stat` CSV, in HAProxy's order."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("not `show stat` output (no '# pxname,...' header)")
    rows = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    frontends: list[Frontend] = []
    backends: dict[str, Backend] = {}
    servers: dict[str, list[Server]] = {}
    for row in rows:
        proxy, kind = row.get("pxname") or "", row.get("type") or ""
        scur, stot = _int(row.get("scur")), _int(row.get("stot"))
        status = row.get("status") or ""
        if kind == TYPE_FRONTEND:
            frontends.append(Frontend(proxy, status, scur, stot))
        elif kind == TYPE_BACKEND:
            backends[proxy] = Backend(proxy, status, scur, stot, servers.setdefault(proxy, []))
        elif kind == TYPE_SERVER:
            servers.setdefault(proxy, []).append(
                Server(
                    name=row.get("svname") or "",
                    status=status,
                    address=row.get("addr") or "",
                    current_sessions=scur,
                    total_sessions=stot,
                    check_status=row.get("check_status") or "",
                    weight=_int(row.get("weight")),
                    last_change_s=_int(row.get("lastchg")),
                )
            )
    # A backend's BACKEND row comes after its servers; the shared list already holds them.
    return frontends, list(backends.values())


def find_sockets(socket_path: str) -> list[str]:
    """The configured path if it is a socket, then every per-node socket Ray made."""
    directory, name = os.path.split(socket_path)
    candidates = [socket_path, *sorted(glob.glob(os.path.join(glob.escape(directory), "*", name)))]
    found = []
    for path in candidates:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode) and path not in found:
                found.append(path)
        except OSError:
            continue
    return found


@dataclass
class SocketStatus:
    path: str
    node_id: str | None
    info: dict[str, str] = field(default_factory=dict)
    frontends: list[Frontend] = field(default_factory=list)
    backends: list[Backend] = field(default_factory=list)
    error: str | None = None


def collect(socket_path: str, paths: list[str]) -> list[SocketStatus]:
    configured_dir = os.path.dirname(socket_path)
    result = []
    for path in paths:
        parent = os.path.dirname(path)
        node_id = os.path.basename(parent) if parent != configured_dir else None
        status = SocketStatus(path, node_id)
        try:
            status.info = parse_show_info(query(path, "show info"))
            status.frontends, status.backends = parse_show_stat(query(path, "show stat"))
        except ConnectionRefusedError:
            status.error = "stale socket: no HAProxy answers on it"
        except (OSError, ValueError) as exc:
            status.error = f"{type(exc).__name__}: {exc}"
        result.append(status)
    return result


def status_json(statuses: list[SocketStatus]) -> dict[str, Any]:
    return {"sockets": [asdict(s) for s in statuses]}


def render_status(statuses: list[SocketStatus]) -> str:
    out: list[str] = []
    for status in statuses:
        where = f"node {status.node_id}" if status.node_id else "this node"
        out.append(f"HAProxy on {where} ({status.path})")
        if status.error:
            out.append(f"  {status.error}")
            out.append("")
            continue
        info = status.info
        out.append(
            f"  version {info.get('Version', '?')}, pid {info.get('Pid', '?')}, "
            f"uptime {info.get('Uptime', '?')}, threads {info.get('Nbthread', '?')}, "
            f"connections {info.get('CurrConns', '?')}/{info.get('Maxconn', '?')}"
        )
        rows: list[list[str]] = []
        for backend in status.backends:
            rows.append(
                [
                    backend.name,
                    "(backend)",
                    backend.status,
                    "",
                    str(backend.current_sessions),
                    str(backend.total_sessions),
                    "",
                ]
            )
            for server in backend.servers:
                rows.append(
                    [
                        "",
                        server.name,
                        server.status,
                        server.address,
                        str(server.current_sessions),
                        str(server.total_sessions),
                        server.check_status,
                    ]
                )
        headers = ["BACKEND", "SERVER", "STATUS", "ADDRESS", "CUR", "TOTAL", "CHECK"]
        out.append(render_table(headers, rows, indent="  "))
        frontend_rows = [
            [f.name, f.status, str(f.current_sessions), str(f.total_sessions)]
            for f in status.frontends
        ]
        if frontend_rows:
            out.append(render_table(["FRONTEND", "STATUS", "CUR", "TOTAL"], frontend_rows, "  "))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
