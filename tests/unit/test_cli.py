"""The command line: help for every command, exec pass-through, `head`/`worker` preparation."""

from __future__ import annotations

import configparser
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import build_parser, main
from ray_serve_haproxy.state_dir import SERVE_FAILED, SUPERVISOR_CONF, mark

pytestmark = pytest.mark.unit

COMMANDS = {
    "head",
    "worker",
    "entry",
    "check",
    "config",
    "status",
    "healthcheck",
    "drain",
    "settings-table",
    "sbom",
    "sbom-generate",
    "run-ray",
    "syslog",
    "serve-up",
    "watchdog",
    "kuberay",
}


def test_commands() -> None:
    assert set(build_parser().commands) == COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"ray-serve-haproxy {command}" in capsys.readouterr().out


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ray_serve_haproxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_command_is_executed() -> None:
    result = run_module("echo", "hello", "--world")
    assert result.returncode == 0
    assert result.stdout == "hello --world\n"


def test_unknown_program_exits_127() -> None:
    result = run_module("no-such-program-anywhere")
    assert result.returncode == 127
    assert "neither a command nor a program" in result.stderr


def test_unknown_option_is_an_argparse_error() -> None:
    result = run_module("--bogus")
    assert result.returncode == 2


@pytest.fixture
def node_env(monkeypatch: pytest.MonkeyPatch, private_paths: dict[str, str]) -> dict[str, str]:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", "/bin/sh")  # exists everywhere
    return private_paths


def mode(path: str) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def test_head_prepares_private_dirs_role_and_config(
    node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = node_env["RSH_STATE_DIR"]
    metrics_dir = str(Path(node_env["RAY_SERVE_HAPROXY_SOCKET_PATH"]).parent.parent / "metrics")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH", f"{metrics_dir}/m.sock")
    Path(state).mkdir(mode=0o755)
    mark(state, SERVE_FAILED, "from an earlier run")
    assert main(["head", "--render-only"]) == 0
    assert capsys.readouterr().out.strip() == f"{state}/{SUPERVISOR_CONF}"
    assert (Path(state) / "role").read_text() == "head\n"
    assert not (Path(state) / SERVE_FAILED).exists()
    socket_dir = str(Path(node_env["RAY_SERVE_HAPROXY_SOCKET_PATH"]).parent)
    for directory in (
        state,
        socket_dir,
        metrics_dir,
        node_env["RAY_SERVE_HAPROXY_SERVER_STATE_BASE"],
    ):
        assert mode(directory) == 0o700, directory
    conf = configparser.RawConfigParser()
    conf.read(f"{state}/{SUPERVISOR_CONF}")
    assert "program:serve-up" in conf


def test_worker_without_head_address_starts_nothing(
    node_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "--render-only"]) == 2
    assert "RSH_HEAD_ADDRESS" in capsys.readouterr().err
    assert not Path(node_env["RSH_STATE_DIR"]).exists()


def test_worker_renders(node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSH_HEAD_ADDRESS", "head:6379")
    assert main(["worker", "--render-only"]) == 0
    assert (Path(node_env["RSH_STATE_DIR"]) / "role").read_text() == "worker\n"


def test_supervisord_gets_no_empty_ray_variables(
    node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray_serve_haproxy.cli import _supervisord_environment
    from ray_serve_haproxy.settings_loader import load_settings

    monkeypatch.setenv("RAY_SERVE_HAPROXY_MAXCONN", "")  # Ray would crash on int("")
    monkeypatch.setenv("UNRELATED_EMPTY", "")
    env = _supervisord_environment(load_settings())
    assert "RAY_SERVE_HAPROXY_MAXCONN" not in env
    assert env["UNRELATED_EMPTY"] == ""
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"


def test_config_env_export(
    node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_MAXCONN", "4321")
    assert main(["config", "--env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "export RAY_SERVE_HAPROXY_MAXCONN=4321" in lines
    assert "export RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S=5" in lines
    assert all(line.startswith("export RAY_") for line in lines)


def test_config_table_marks_unset_values(
    node_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["NAME"] == ["VALUE", "SOURCE"]
    assert rows["RSH_HEAD_ADDRESS"] == ["(unset)", "default"]
    assert rows["RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S"] == ["5", "default"]
    assert rows["RAY_SERVE_HAPROXY_BINARY_PATH"] == ["/bin/sh", "environment"]


def test_head_execs_supervisord_in_the_foreground(
    node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, argv, env))

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setenv("RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S", "")
    assert main(["head"]) == 0
    ((path, argv, env),) = calls
    conf = f"{node_env['RSH_STATE_DIR']}/{SUPERVISOR_CONF}"
    assert argv[0] == path and "supervisor" in path
    assert argv[-3:] == ["-n", "-c", conf]
    assert "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S" not in env  # empty: unset, not int("")
    out = capsys.readouterr().out
    assert "starting a head node with" in out
    assert "  RAY_SERVE_HAPROXY_NBTHREAD=" in out and "(derived)" in out
    assert "  RAY_SERVE_ENABLE_HA_PROXY=1 (environment)" in out
