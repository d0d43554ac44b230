"""A tiny UDP syslog receiver that prints HAProxy's log lines to stdout.

Ray's HAProxy config sends its access log to RAY_SERVE_HAPROXY_LOG_TARGET (UDP syslog). In a
container nothing listens there, so the log would be lost; this receiver makes each line part
of the container's stdout (`docker logs`, `kubectl logs`), tagged with the node's name.
"""

from __future__ import annotations

import re
import socket
import sys
from typing import TextIO

_PRI = re.compile(rb"^<\d{1,3}>")
# RFC 3164 header after <PRI>: "Mmm dd hh:mm:ss " then "tag[pid]: " (HAProxy sends no hostname).
_RFC3164_TIME = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")
_TAG = re.compile(r"^[\w.-]+(\[\d+\])?: ")
# RFC 5424 after <PRI>: "1 TIMESTAMP HOST APP PROCID MSGID " then structured data and message.
_RFC5424 = re.compile(r"^1 \S+ \S+ \S+ \S+ \S+ (-|(\[.*?\])+) ?")


def format_line(datagram: bytes, tag: str) -> str | None:
    """`tag: message` for one syslog datagram (None if it carries no text)."""
    data = _PRI.sub(b"", datagram.rstrip(b"\r\n\0"), count=1)
    text = data.decode(errors="replace")
    if match := _RFC5424.match(text):
        text = text[match.end() :]
    else:
        text = _RFC3164_TIME.sub("", text, count=1)
        text = _TAG.sub("", text, count=1)
    text = text.strip()
    return f"{tag}: {text}" if text else None


def default_tag() -> str:
    return f"haproxy[{socket.gethostname()}]"


# Datagrams read per write: at thousands of requests/s one write (and flush) per line costs
# more CPU than HAProxy's forwarding of the request itself.
MAX_BATCH = 256


def open_output(path: str | None) -> TextIO:
    """Where the lines go: `path` (e.g. /proc/1/fd/1, PID 1's stdout, so supervisord does not
    have to relay every line), falling back to this process's stdout."""
    if path:
        try:
            return open(path, "a", buffering=1 << 16, encoding="utf-8", errors="replace")
        except OSError as exc:
            print(f"syslog: cannot write to {path} ({exc}); using stdout", file=sys.stderr)
    return sys.stdout


def read_batch(sock: socket.socket, limit: int = MAX_BATCH) -> list[bytes]:
    """One datagram (blocking), then whatever else is already queued, up to `limit`."""
    batch = [sock.recv(65535)]
    while len(batch) < limit:
        try:
            batch.append(sock.recv(65535, socket.MSG_DONTWAIT))
        except BlockingIOError:
            break
    return batch


def serve(host: str, port: int, tag: str, out: TextIO = sys.stdout) -> int:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        hint = ""
        if port < 1024 and isinstance(exc, PermissionError):
            hint = (
                " (ports below 1024 need net.ipv4.ip_unprivileged_port_start <= port: set "
                "RAY_SERVE_HAPROXY_SYSLOG_PORT to e.g. 5140)"
            )
        print(f"syslog: cannot listen on udp {host}:{port}: {exc}{hint}", file=sys.stderr)
        return 1
    print(f"syslog: HAProxy's log from udp {host}:{port} goes to stdout", file=sys.stderr)
    try:
        while True:
            lines = [line for d in read_batch(sock) if (line := format_line(d, tag))]
            if lines:
                out.write("\n".join(lines) + "\n")
                out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        sock.close()
