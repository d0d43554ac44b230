"""The supervisord event listener stops supervisord when Ray's program exits."""

from __future__ import annotations

import io
import subprocess

import pytest
from ray_serve_haproxy.watchdog import listen, parse_tokens, should_stop

pytestmark = pytest.mark.unit


def event(name: str, payload: str) -> bytes:
    header = (
        f"ver:3.0 server:supervisor serial:21 pool:watchdog poolserial:10 "
        f"eventname:{name} len:{len(payload)}\n"
    )
    return header.encode() + payload.encode()


def test_parse_tokens() -> None:
    assert parse_tokens("processname:ray groupname:ray expected:0 pid:7") == {
        "processname": "ray",
        "groupname": "ray",
        "expected": "0",
        "pid": "7",
    }


@pytest.mark.parametrize(
    ("name", "process", "stop"),
    [
        ("PROCESS_STATE_EXITED", "ray", True),
        ("PROCESS_STATE_FATAL", "ray", True),
        ("PROCESS_STATE_EXITED", "serve-up", False),
        ("PROCESS_STATE_STOPPED", "ray", False),
    ],
)
def test_should_stop(name: str, process: str, stop: bool) -> None:
    assert should_stop(name, {"processname": process}, "ray") is stop


def run_listener(stdin: bytes) -> tuple[bytes, int | None]:
    """Feeds events to the listener; a `sleep` child stands in for supervisord."""
    supervisord = subprocess.Popen(["sleep", "30"])
    out = io.BytesIO()
    try:
        assert listen("ray", io.BytesIO(stdin), out, supervisord.pid) == 0
        try:
            code: int | None = supervisord.wait(1 if b"serve-up" in stdin else 5)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        supervisord.kill()
        supervisord.wait()
    return out.getvalue(), code


def test_ray_exit_terminates_supervisord() -> None:
    stdin = event(
        "PROCESS_STATE_EXITED",
        "processname:ray groupname:ray from_state:RUNNING expected:0 pid:2766",
    )
    out, code = run_listener(stdin)
    assert code == -15  # SIGTERM
    assert out == b"READY\nRESULT 2\nOKREADY\n"


def test_other_events_leave_supervisord_alone() -> None:
    stdin = event(
        "PROCESS_STATE_EXITED",
        "processname:serve-up groupname:serve-up from_state:RUNNING expected:1 pid:99",
    )
    out, code = run_listener(stdin)
    assert code is None
    assert out.count(b"RESULT 2\nOK") == 1
