"""`status`: parsers on real HAProxy output (tests/unit/data), and the admin-socket client
against a fake socket that answers with that output."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.haproxy_stats import (
    collect,
    find_sockets,
    parse_show_info,
    parse_show_stat,
    render_status,
    status_json,
)

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"
SHOW_STAT = (DATA / "show_stat.txt").read_text()
SHOW_STAT_MAINT = (DATA / "show_stat_maint.txt").read_text()
SHOW_INFO = (DATA / "show_info.txt").read_text()
NODE_ID = "ab" * 28


def test_show_stat_backends_and_servers() -> None:
    frontends, backends = parse_show_stat(SHOW_STAT)
    assert [(f.name, f.status, f.total_sessions) for f in frontends] == [
        ("http_frontend", "OPEN", 5)
    ]
    (backend,) = backends
    assert (backend.name, backend.status, backend.total_sessions) == ("http-hello", "UP", 5)
    up, down = backend.servers
    assert (up.name, up.status, up.check_status, up.total_sessions) == (
        "replica_up",
        "UP",
        "L7OK",
        5,
    )
    assert (down.name, down.status, down.check_status, down.total_sessions) == (
        "replica_down",
        "DOWN",
        "L4CON",
        0,
    )
    for server in (up, down):
        host, port = server.address.rsplit(":", 1)
        assert host == "127.0.0.1" and 1 <= int(port) <= 65535
        assert server.current_sessions == 0
    assert up.address != down.address


def test_show_stat_maint_server() -> None:
    _, (backend,) = parse_show_stat(SHOW_STAT_MAINT)
    assert [(s.name, s.status) for s in backend.servers] == [
        ("replica_up", "MAINT"),
        ("replica_down", "DOWN"),
    ]
    assert backend.status == "DOWN"  # no server left UP


def test_show_stat_rejects_other_text() -> None:
    with pytest.raises(ValueError):
        parse_show_stat("Unknown command\n")


def test_show_info() -> None:
    info = parse_show_info(SHOW_INFO)
    assert info["Name"] == "HAProxy"
    assert info["Version"].startswith("2.8.")
    assert int(info["Pid"]) > 0
    assert info["Maxconn"] == "100"
    assert "CurrConns" in info


def test_render_status_table() -> None:
    frontends, backends = parse_show_stat(SHOW_STAT)
    from ray_serve_haproxy.haproxy_stats import SocketStatus

    status = SocketStatus(
        "/x/" + NODE_ID + "/admin.sock", NODE_ID, parse_show_info(SHOW_INFO), frontends, backends
    )
    text = render_status([status])
    lines = text.splitlines()
    assert lines[0] == f"HAProxy on node {NODE_ID} (/x/{NODE_ID}/admin.sock)"
    assert "version 2.8." in lines[1] and "connections 0/100" in lines[1]
    header = next(line for line in lines if line.strip().startswith("BACKEND"))
    assert header.split() == ["BACKEND", "SERVER", "STATUS", "ADDRESS", "CUR", "TOTAL", "CHECK"]
    rows = {line.split()[0]: line.split() for line in lines if "replica_" in line}
    assert rows["replica_up"][1] == "UP" and rows["replica_up"][-1] == "L7OK"
    assert rows["replica_down"][1] == "DOWN" and rows["replica_down"][-2] == "0"
    assert any(line.split()[:2] == ["http_frontend", "OPEN"] for line in lines)


class FakeHAProxy:
    """Answers `show stat` / `show info` on a UNIX socket like HAProxy's admin socket."""

    def __init__(self, path: str) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen()
        self.commands: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                command = conn.makefile().readline().strip()
                self.commands.append(command)
                answer = {"show stat": SHOW_STAT, "show info": SHOW_INFO}.get(command, "?\n")
                conn.sendall(answer.encode())

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def node_socket(short_tmp: Path) -> Iterator[tuple[Path, FakeHAProxy]]:
    """An admin socket where Ray 2.60 puts it: <dir>/<node id>/admin.sock."""
    node_dir = short_tmp / "hap" / NODE_ID
    node_dir.mkdir(parents=True)
    fake = FakeHAProxy(str(node_dir / "admin.sock"))
    yield short_tmp / "hap" / "admin.sock", fake
    fake.close()


def test_find_sockets_by_glob_and_exact_path(node_socket: tuple[Path, FakeHAProxy]) -> None:
    configured, _ = node_socket
    found = find_sockets(str(configured))
    assert found == [str(configured.parent / NODE_ID / "admin.sock")]
    exact = socket.socket(socket.AF_UNIX)
    exact.bind(str(configured))
    try:
        assert find_sockets(str(configured))[0] == str(configured)
        assert len(find_sockets(str(configured))) == 2
    finally:
        exact.close()


def test_collect_queries_the_socket(node_socket: tuple[Path, FakeHAProxy]) -> None:
    configured, fake = node_socket
    (status,) = collect(str(configured), find_sockets(str(configured)))
    assert status.error is None
    assert status.node_id == NODE_ID
    assert status.info["Name"] == "HAProxy"
    assert [s.name for s in status.backends[0].servers] == ["replica_up", "replica_down"]
    assert sorted(fake.commands) == ["show info", "show stat"]
    data = json.loads(json.dumps(status_json([status])))
    server = data["sockets"][0]["backends"][0]["servers"][0]
    assert server["name"] == "replica_up" and server["status"] == "UP"


def test_stale_socket_is_reported(short_tmp: Path) -> None:
    path = short_tmp / "stale.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # bound, never listening: what a dead HAProxy leaves behind
    stale.close()
    (status,) = collect(str(path), [str(path)])
    assert status.error is not None and "stale" in status.error


def test_status_command_json(
    node_socket: tuple[Path, FakeHAProxy],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    configured, _ = node_socket
    monkeypatch.setenv("RAY_SERVE_HAPROXY_SOCKET_PATH", str(configured))
    monkeypatch.setenv("RSH_STATE_DIR", str(tmp_path / "state"))
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in out["sockets"][0]["backends"][0]["servers"]]
    assert names == ["replica_up", "replica_down"]
    assert main(["status"]) == 0
    assert "replica_down" in capsys.readouterr().out


def test_status_command_without_socket(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_SOCKET_PATH", str(short_tmp / "none" / "admin.sock"))
    monkeypatch.setenv("RSH_STATE_DIR", str(short_tmp / "state"))
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert "no HAProxy admin socket" in err and os.path.join(str(short_tmp), "none") in err


def test_status_command_reports_the_patch_level(
    node_socket: tuple[Path, FakeHAProxy],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Above the sockets' tables: what the build recorded (haproxy_patch_level)."""
    configured, _ = node_socket
    record = tmp_path / "haproxy-security.json"
    record.write_text(
        json.dumps(
            {
                "version": "3.0.11",
                "branch": "3.0",
                "floor": "3.0.24",
                "below_floor": True,
                "allowed_below_floor": True,
                "missing": [
                    {
                        "id": "CVE-2026-55204",
                        "fixed_in": "3.0.24",
                        "severity": "high",
                        "basis": "inferred",
                        "reach": "http2",
                        "summary": "hpack",
                        "source": "ray-64430",
                    }
                ],
                "open": [],
            }
        )
    )
    monkeypatch.setattr("ray_serve_haproxy.haproxy_patch_level.SECURITY_PATH", str(record))
    monkeypatch.setenv("RAY_SERVE_HAPROXY_SOCKET_PATH", str(configured))
    monkeypatch.setenv("RSH_STATE_DIR", str(tmp_path / "state"))
    assert main(["status"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("WARNING: HAProxy 3.0.11 is BELOW the security floor 3.0.24")
    assert first.endswith("CVE-2026-55204")
    assert main(["status", "--json"]) == 0
    level = json.loads(capsys.readouterr().out)["haproxy_security"]
    assert level["below_floor"] is True and level["missing"] == ["CVE-2026-55204"]
    monkeypatch.setattr(
        "ray_serve_haproxy.haproxy_patch_level.SECURITY_PATH", str(tmp_path / "none.json")
    )
    assert main(["status"]) == 0
    assert capsys.readouterr().out.startswith("HAProxy patch level: unknown (no build record")
