"""`check`: HAProxy's feature list, free ports, the command's report."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.env_checks import (
    Level,
    bind_problem,
    check_haproxy,
    check_ports,
    missing_features,
    parse_haproxy_vv,
)
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
VV = (Path(__file__).resolve().parent / "data" / "haproxy_vv.txt").read_text()


def fake_haproxy(tmp_path: Path, vv: str) -> str:
    (tmp_path / "vv.txt").write_text(vv)
    script = tmp_path / "haproxy"
    script.write_text(f"#!{sys.executable}\nprint(open({str(tmp_path / 'vv.txt')!r}).read())\n")
    script.chmod(0o755)
    return str(script)


def test_real_feature_list() -> None:
    version, enabled = parse_haproxy_vv(VV)
    assert version is not None and version.startswith("2.8.")
    assert {"OPENSSL", "ZLIB", "PCRE", "LUA", "PROMEX"} <= enabled
    assert "QUIC" not in enabled  # listed as -QUIC
    assert missing_features(enabled) == []


def test_pcre2_counts_as_pcre() -> None:
    vv = VV.replace("+PCRE ", "-PCRE ").replace("-PCRE2 ", "+PCRE2 ")
    _, enabled = parse_haproxy_vv(vv)
    assert "PCRE" not in enabled and "PCRE2" in enabled
    assert missing_features(enabled) == []


def test_missing_features_are_named(tmp_path: Path) -> None:
    vv = VV.replace("+LUA ", "-LUA ").replace("+PROMEX ", "-PROMEX ")
    finding = check_haproxy(fake_haproxy(tmp_path, vv))
    assert finding.level == Level.FAIL
    assert "+LUA" in finding.detail and "+PROMEX" in finding.detail


def test_good_binary(tmp_path: Path) -> None:
    finding = check_haproxy(fake_haproxy(tmp_path, VV))
    assert finding.level == Level.OK
    assert "+OPENSSL +ZLIB +PCRE +LUA +PROMEX" in finding.detail


def test_no_binary() -> None:
    assert check_haproxy("").level == Level.FAIL
    assert check_haproxy("/nonexistent/haproxy").level == Level.FAIL


def test_bind_problem_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert bind_problem(port) == "in use"
    assert bind_problem(port) is None


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _listener_with_free_neighbours() -> socket.socket:
    """A listening socket whose port's neighbours (-1 .. +3) nothing else holds right now: on a
    busy machine a random neighbour may belong to another process and make the check FAIL."""
    for _ in range(50):
        listener = socket.socket()
        listener.bind(("0.0.0.0", 0))
        port = listener.getsockname()[1]
        if all(_bindable(p) for p in (port - 1, port + 1, port + 2, port + 3)):
            listener.listen()
            return listener
        listener.close()
    raise AssertionError("no free run of five ports found")


def test_busy_port_in_a_replica_range(load: Load) -> None:
    with _listener_with_free_neighbours() as listener:
        port = listener.getsockname()[1]
        effective = load(
            RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=str(port - 1),
            RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=str(port + 1),
            RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT=str(port + 2),
            RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT=str(port + 3),
        )
        findings = check_ports(effective, Role.WORKER)
    http = next(f for f in findings if "replica HTTP" in f.subject)
    assert http.level == Level.FAIL and f"1 busy: {port}" in http.detail
    grpc = next(f for f in findings if "replica gRPC" in f.subject)
    assert grpc.level == Level.OK
    assert not any("RSH_RAY_PORT" in f.subject for f in findings)  # head-only ports


def test_check_command_report(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    private_paths: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", fake_haproxy(tmp_path, VV))
    code = main(["check", "--no-ports"])
    out = capsys.readouterr().out
    assert "settings: OK (head)" in out
    assert "OK    haproxy:" in out
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert code == (1 if failures else 0)
    socket_dir = str(Path(private_paths["RAY_SERVE_HAPROXY_SOCKET_PATH"]).parent)
    Path(socket_dir).mkdir(mode=0o755, parents=True)
    Path(socket_dir).chmod(0o755)
    assert main(["check", "--no-ports"]) == 1
    assert f"FAIL  {socket_dir}: {socket_dir} has mode 0755" in capsys.readouterr().out


def test_replica_range_inside_the_ephemeral_range_is_a_warning(load: Load) -> None:
    from ray_serve_haproxy.env_checks import check_ephemeral_overlap

    findings = check_ephemeral_overlap(load(), range(32768, 61000))
    assert [(f.level, f.subject) for f in findings] == [
        (Level.WARN, "replica gRPC ports 40000-41000")
    ]
    assert check_ephemeral_overlap(load(), range(50000, 61000)) == []
    assert check_ephemeral_overlap(load(), None) == []


def test_busy_grpc_port_fails_and_port_0_is_not_checked(load: Load) -> None:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        if 30000 <= port <= 31000 or 40000 <= port <= 41000:
            pytest.skip("the kernel picked a port inside a replica range")
        findings = check_ports(load(RSH_GRPC_PORT=str(port)), Role.WORKER)
        grpc_port = next(f for f in findings if "RSH_GRPC_PORT" in f.subject)
        assert grpc_port.level == Level.FAIL and grpc_port.detail == "in use"
    findings = check_ports(load(RSH_GRPC_PORT="0"), Role.WORKER)
    assert not any("RSH_GRPC_PORT" in f.subject for f in findings)
