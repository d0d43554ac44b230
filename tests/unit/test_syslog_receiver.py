"""HAProxy's syslog datagrams become tagged stdout lines."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_serve_haproxy.syslog_receiver import format_line, open_output, read_batch

pytestmark = pytest.mark.unit

# What HAProxy 2.8 sends for `log 127.0.0.1:514 local0 info` with `option httplog`.
ACCESS = (
    b"<134>Nov 28 05:15:01 haproxy[4242]: 172.18.0.1:51234 [28/Nov/2025:05:15:01.123] "
    b"http_frontend http-hello/hello_replica_1 0/0/1/2/3 200 180 - - ---- 1/1/0/0/0 0/0 "
    b'"GET /hello HTTP/1.1"\n'
)


def test_rfc3164_access_line() -> None:
    line = format_line(ACCESS, "haproxy[head]")
    assert line is not None
    assert line.startswith("haproxy[head]: 172.18.0.1:51234 [28/Nov/2025:05:15:01.123] ")
    assert "http-hello/hello_replica_1" in line and " 200 " in line
    assert "<134>" not in line and "haproxy[4242]" not in line and not line.endswith("\n")


def test_rfc5424_line() -> None:
    datagram = b"<134>1 2025-11-28T05:15:01.123456+00:00 host haproxy 4242 - - Proxy started.\n"
    assert format_line(datagram, "haproxy[n1]") == "haproxy[n1]: Proxy started."


def test_empty_and_binary_datagrams() -> None:
    assert format_line(b"<134>\n", "t") is None
    assert format_line(b"<134>caf\xe9", "t") == "t: caf\ufffd"


def test_receiver_prints_each_datagram() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray_serve_haproxy", "syslog", "--port", str(port), "--tag", "hx"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and "goes to stdout" in proc.stderr.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(3):
                sender.sendto(
                    b"<134>Nov 28 05:15:01 haproxy[1]: line %d\n" % i, ("127.0.0.1", port)
                )
                time.sleep(0.05)
        assert proc.stdout is not None
        assert [proc.stdout.readline() for _ in range(3)] == [f"hx: line {i}\n" for i in range(3)]
    finally:
        proc.terminate()
        proc.wait(10)


def test_receiver_reports_a_busy_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "ray_serve_haproxy", "syslog", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on udp 127.0.0.1:{port}" in result.stderr


def test_a_burst_of_datagrams_is_read_in_one_batch() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(5):
            sender.sendto(f"<134>line {i}".encode(), receiver.getsockname())
        time.sleep(0.1)
        batch = read_batch(receiver, limit=3)
        assert batch == [b"<134>line 0", b"<134>line 1", b"<134>line 2"]
        assert read_batch(receiver) == [b"<134>line 3", b"<134>line 4"]
    finally:
        sender.close()
        receiver.close()


def test_output_falls_back_to_stdout_when_the_path_cannot_be_opened(tmp_path: Path) -> None:
    assert open_output(str(tmp_path / "missing-dir" / "out")) is sys.stdout
    out = open_output(str(tmp_path / "out"))
    try:
        assert out is not sys.stdout
        out.write("x\n")
    finally:
        out.close()
    assert (tmp_path / "out").read_text() == "x\n"
