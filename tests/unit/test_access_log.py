"""RSH_ACCESS_LOG applied to a config Ray 2.60 really generated (data/ray_haproxy.cfg), and the
launcher that applies it before it runs HAProxy."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ray_serve_haproxy.access_log import (
    ERROR_RULE,
    MARKER,
    SEPARATE_ERRORS,
    AccessLogMode,
    TemplateChanged,
    access_log_target,
    edit_config,
)
from ray_serve_haproxy.h2_idle_close import TIMEOUT as H2_IDLE_CLOSE
from ray_serve_haproxy.haproxy_launcher import config_path

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"
RAY_CFG = (DATA / "ray_haproxy.cfg").read_text()
UDP_LOGGER = "    log 127.0.0.1:514 local0 info"
METRICS_LOGGER_END = "metrics.sock len 8192 format rfc5424 local1 debug"


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.split("\n") if needle in line]


def stdout_cfg() -> str:
    """Ray's config as rendered with RAY_SERVE_HAPROXY_LOG_TARGET=stdout (the runtime's)."""
    assert UDP_LOGGER in RAY_CFG
    return RAY_CFG.replace(UDP_LOGGER, "    log stdout local0 info")


def test_recorded_config_has_the_shape_the_edit_relies_on() -> None:
    assert access_log_target(RAY_CFG) == "127.0.0.1:514"
    assert len(lines_with(RAY_CFG, "frontend ")) >= 3  # prometheus, http_frontend, grpc_frontend
    assert len(lines_with(RAY_CFG, METRICS_LOGGER_END)) == 1


def test_all_keeps_every_request_and_only_marks_the_file() -> None:
    edited = edit_config(RAY_CFG, AccessLogMode.ALL)
    assert edited.changed and edited.target == "127.0.0.1:514"
    assert edited.text == f"{MARKER}all\n{RAY_CFG}"


def test_stdout_target_gets_the_raw_format() -> None:
    edited = edit_config(stdout_cfg(), AccessLogMode.ALL)
    assert edited.target == "stdout"
    assert lines_with(edited.text, "log stdout") == ["    log stdout format raw local0 info"]


def test_errors_mode_quiets_normal_requests_and_raises_the_errors() -> None:
    edited = edit_config(stdout_cfg(), AccessLogMode.ERRORS)
    text = edited.text
    assert lines_with(text, "log stdout") == ["    log stdout format raw local0 notice"]
    assert text.count(SEPARATE_ERRORS) == 1
    defaults = text.split("\ndefaults\n", 1)[1].split("\n", 1)[0]
    assert defaults == f"    {SEPARATE_ERRORS}"
    frontends = [i for i, line in enumerate(text.split("\n")) if line.startswith("frontend ")]
    assert len(frontends) == text.count(ERROR_RULE) == 3
    for i in frontends:
        assert text.split("\n")[i + 1] == f"    {ERROR_RULE}"
    # Serve's per-request metrics still see every request.
    assert len(lines_with(text, METRICS_LOGGER_END)) == 1


def test_off_mode_keeps_haproxys_events_only() -> None:
    edited = edit_config(RAY_CFG, AccessLogMode.OFF)
    assert lines_with(edited.text, "log 127.0.0.1:514") == ["    log 127.0.0.1:514 local0 notice"]
    assert ERROR_RULE not in edited.text and SEPARATE_ERRORS not in edited.text
    assert len(lines_with(edited.text, METRICS_LOGGER_END)) == 1


@pytest.mark.parametrize("mode", list(AccessLogMode))
def test_an_edited_file_is_never_edited_again(mode: AccessLogMode) -> None:
    once = edit_config(stdout_cfg(), mode)
    twice = edit_config(once.text, mode)
    assert not twice.changed and twice.text == once.text and twice.target == "stdout"


def test_a_config_of_another_shape_is_refused() -> None:
    without_logger = RAY_CFG.replace(UDP_LOGGER, "")
    with pytest.raises(TemplateChanged, match="no `log` line"):
        edit_config(without_logger, AccessLogMode.ERRORS)
    with pytest.raises(TemplateChanged, match="facility and level"):
        edit_config(RAY_CFG.replace(UDP_LOGGER, "    log 127.0.0.1:514"), AccessLogMode.OFF)


def test_config_path_is_the_argument_after_f() -> None:
    assert config_path(["-db", "-f", "/x/haproxy.cfg", "-sf", "12"]) == "/x/haproxy.cfg"
    assert config_path(["-v"]) is None


# --- the launcher, end to end with a stand-in HAProxy ------------------------------------------

FAKE_HAPROXY = """#!/bin/sh
# Stands in for HAProxy: says what it was started with, on the stdout it was given.
echo "fake-haproxy $*"
"""


@pytest.fixture
def fake_haproxy(tmp_path: Path) -> Path:
    path = tmp_path / "haproxy"
    path.write_text(FAKE_HAPROXY)
    path.chmod(0o755)
    return path


def launch(cfg: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from ray_serve_haproxy.haproxy_launcher import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "-db", "-f", str(cfg), "-sf", "41"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_launcher_edits_the_config_and_gives_haproxy_the_container_stdout(
    tmp_path: Path, fake_haproxy: Path
) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(stdout_cfg())
    cfg.chmod(0o640)
    container_stdout = tmp_path / "container-stdout"
    container_stdout.write_text("")
    result = launch(
        cfg,
        {
            "RSH_HAPROXY_BINARY": str(fake_haproxy),
            "RSH_ACCESS_LOG": "errors",
            "RSH_CONTAINER_STDOUT": str(container_stdout),
        },
    )
    assert result.returncode == 0, result.stderr
    # HAProxy was exec'd with Ray's arguments, its stdout the container's.
    assert container_stdout.read_text() == f"fake-haproxy -db -f {cfg} -sf 41\n"
    assert result.stdout == ""
    text = cfg.read_text()
    assert text.startswith(f"{MARKER}errors\n")
    assert "    log stdout format raw local0 notice" in text
    assert f"    {H2_IDLE_CLOSE}" in text  # h2_idle_close.py, in the same write
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rsh-haproxy-")]


def test_launcher_without_a_container_stdout_turns_the_access_log_off(
    tmp_path: Path, fake_haproxy: Path
) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(stdout_cfg())
    container_stderr = tmp_path / "container-stderr"
    result = launch(
        cfg,
        {
            "RSH_HAPROXY_BINARY": str(fake_haproxy),
            "RSH_ACCESS_LOG": "all",
            "RSH_CONTAINER_STDOUT": str(tmp_path / "missing" / "stdout"),
            "RSH_CONTAINER_STDERR": str(container_stderr),
        },
    )
    assert result.returncode == 0, result.stderr
    # Not into Ray's per-reload stdout file: only HAProxy's events are logged.
    assert "    log stdout format raw local0 notice" in cfg.read_text()
    assert "access log off" in container_stderr.read_text()
    assert "access log off" in result.stderr


def test_launcher_starts_haproxy_on_a_config_it_cannot_edit(
    tmp_path: Path, fake_haproxy: Path
) -> None:
    cfg = tmp_path / "haproxy.cfg"
    original = RAY_CFG.replace(UDP_LOGGER, "    log 127.0.0.1:514")
    cfg.write_text(original)
    result = launch(
        cfg,
        {
            "RSH_HAPROXY_BINARY": str(fake_haproxy),
            "RSH_ACCESS_LOG": "off",
            "RSH_CONTAINER_STDERR": str(tmp_path / "container-stderr"),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fake-haproxy -db -f")
    assert cfg.read_text() == original
    assert "used as Ray wrote it" in result.stderr


def test_launcher_refuses_to_run_without_the_real_binary(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(RAY_CFG)
    result = launch(cfg, {"RSH_HAPROXY_BINARY": str(tmp_path / "nope")})
    assert result.returncode == 2
    assert "RSH_HAPROXY_BINARY=" in result.stderr and "allowed:" in result.stderr
