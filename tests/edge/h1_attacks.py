"""HTTP/1 abuse on raw sockets: slowloris, slow bodies, idle connections, smuggling and
malformed requests.

Every attack is bounded by a connection count and a deadline, talks only to 127.0.0.1 and the
port the suite published, and reports what the entry did (how many connections it closed and
when, which status lines came back). Sockets are always closed before an attack returns.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass
class Flood:
    """What a flood of connections saw."""

    opened: int = 0
    refused: int = 0  # connect() failed: refused or reset
    # connect() got no answer within its 3 s: the listener's queues were full (the kernel drops
    # a SYN then, and the client tries again), not a refusal.
    timed_out: int = 0
    closed_by_server: int = 0
    # Seconds from the connection's open to the server's close, for those it closed.
    close_after_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self) -> dict[str, object]:
        closes = sorted(self.close_after_s)
        return {
            "opened": self.opened,
            "refused": self.refused,
            "connect_timed_out": self.timed_out,
            "closed_by_entry": self.closed_by_server,
            "first_close_s": round(closes[0], 1) if closes else None,
            "last_close_s": round(closes[-1], 1) if closes else None,
            "statuses": dict(sorted(self.statuses.items())),
        }


class Conns:
    """Many client connections, and which of them the server closed (EOF or reset)."""

    def __init__(self) -> None:
        self.socks: dict[int, tuple[socket.socket, float]] = {}
        self.flood = Flood()

    def open(self, host: str, port: int, first: bytes = b"") -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(3.0)
        try:
            sock.connect((host, port))
            if first:
                sock.sendall(first)
        except TimeoutError:
            sock.close()
            self.flood.timed_out += 1
            return None
        except OSError:
            sock.close()
            self.flood.refused += 1
            return None
        sock.setblocking(False)
        self.socks[sock.fileno()] = (sock, time.monotonic())
        self.flood.opened += 1
        return sock

    def reap(self, wait: float = 0.0) -> None:
        """Notices connections the server closed (readable, then EOF or error) and drops them."""
        if not self.socks:
            return
        fds = list(self.socks)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        for fd, _ in poller.poll(int(wait * 1000)):
            sock, opened = self.socks[fd]
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self._drop(fd, closed_by_server=True, opened=opened)
                continue
            # A response (408, 400, ...) comes before the server's close: counted, and the
            # close is seen on a later poll.
            for status in STATUS_LINE.findall(data):
                self.flood.statuses[int(status)] += 1

    def _drop(self, fd: int, *, closed_by_server: bool, opened: float) -> None:
        sock, _ = self.socks.pop(fd)
        if closed_by_server:
            self.flood.closed_by_server += 1
            self.flood.close_after_s.append(time.monotonic() - opened)
        sock.close()

    def send_each(self, data: bytes) -> None:
        for fd, (sock, opened) in list(self.socks.items()):
            try:
                sock.send(data)
            except BlockingIOError:
                pass
            except OSError:
                self._drop(fd, closed_by_server=True, opened=opened)

    def close_all(self) -> None:
        for sock, _ in self.socks.values():
            sock.close()
        self.socks.clear()


def slowloris(host: str, port: int, connections: int, hold_s: float, every_s: float = 2.0) -> Flood:
    """`connections` requests whose headers never end: a request line and one header, then one
    more header line every `every_s` seconds, for `hold_s` seconds or until the entry closed
    them all. Closed connections are not reopened (the count stays bounded)."""
    conns = Conns()
    head = b"GET /hello HTTP/1.1\r\nHost: entry\r\nUser-Agent: slowloris\r\n"
    for _ in range(connections):
        conns.open(host, port, head)
    end = time.monotonic() + hold_s
    n = 0
    while conns.socks and time.monotonic() < end:
        conns.reap(wait=min(every_s, max(0.0, end - time.monotonic())))
        n += 1
        conns.send_each(f"X-Slow-{n}: {n}\r\n".encode())
    conns.reap()
    conns.close_all()
    return conns.flood


def slow_body(host: str, port: int, connections: int, hold_s: float, every_s: float = 1.0) -> Flood:
    """POSTs that announce a 100 kB body and send 16 bytes of it every `every_s` seconds."""
    conns = Conns()
    head = (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    for _ in range(connections):
        conns.open(host, port, head)
    end = time.monotonic() + hold_s
    while conns.socks and time.monotonic() < end:
        conns.reap(wait=min(every_s, max(0.0, end - time.monotonic())))
        conns.send_each(b"x" * 16)
    conns.reap(wait=0.5)
    conns.close_all()
    return conns.flood


def idle(host: str, port: int, connections: int, hold_s: float) -> Flood:
    """`connections` connections that never send a byte, held `hold_s` seconds."""
    conns = Conns()
    for _ in range(connections):
        conns.open(host, port)
    end = time.monotonic() + hold_s
    while conns.socks and time.monotonic() < end:
        conns.reap(wait=min(1.0, max(0.0, end - time.monotonic())))
    conns.close_all()
    return conns.flood


def exchange(host: str, port: int, payload: bytes, wait_s: float = 3.0) -> tuple[list[int], bool]:
    """Sends one raw payload on a new connection; returns (status codes of every response that
    came back, whether the server closed the connection within wait_s)."""
    data = b""
    closed = False
    with socket.create_connection((host, port), timeout=wait_s) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            closed = True  # refused mid-send (an oversized request): its answer may be waiting
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    return [int(s) for s in STATUS_LINE.findall(data)], closed


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: entry\r\n\r\n"

# name -> (raw request, statuses allowed for the FIRST response). After it, the connection must
# carry no second response: the smuggled request (/smuggled) must never be answered.
SMUGGLING: dict[str, tuple[bytes, set[int]]] = {
    "CL.TE": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nContent-Length: %d\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s" % (5 + len(SMUGGLED), SMUGGLED),
        {200, 400},
    ),
    "TE.CL": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED),
        {200, 400},
    ),
    "TE obfuscated: xchunked": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding: xchunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
        {400, 501},
    ),
    "TE obfuscated: space before colon": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding : chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
        {400},
    ),
    "TE obfuscated: chunked, identity": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding: chunked, identity\r\n"
        b"\r\n0\r\n\r\n" + SMUGGLED,
        {400, 501},
    ),
    "TE obfuscated: vertical tab": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding:\x0bchunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
        {400, 501},
    ),
    "TE obfuscated: two headers": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: cow\r\n\r\n0\r\n\r\n" + SMUGGLED,
        {400, 501},
    ),
    "duplicate Content-Length": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nContent-Length: 5\r\nContent-Length: 44\r\n"
        b"\r\nhello" + SMUGGLED,
        {400},
    ),
    "Content-Length list": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nContent-Length: 5, 44\r\n\r\nhello" + SMUGGLED,
        {400},
    ),
}

# name -> (raw request, allowed statuses). Each must be refused (4xx), never reach a replica.
MALFORMED: dict[str, tuple[bytes, set[int]]] = {
    "request line of 100 kB": (
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: entry\r\n\r\n",
        {400, 414},
    ),
    "header of 100 kB": (
        b"GET /hello HTTP/1.1\r\nHost: entry\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n",
        {400, 431},
    ),
    "1000 headers": (
        b"GET /hello HTTP/1.1\r\nHost: entry\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
        + b"\r\n",
        {400, 431},
    ),
    "space in a header name": (b"GET /hello HTTP/1.1\r\nHost: entry\r\nBad Name: v\r\n\r\n", {400}),
    "NUL in a header value": (b"GET /hello HTTP/1.1\r\nHost: entry\r\nX-A: a\x00b\r\n\r\n", {400}),
    "header without a colon": (b"GET /hello HTTP/1.1\r\nHost: entry\r\nNoColonHere\r\n\r\n", {400}),
    "bad method": (b"G(ET /hello HTTP/1.1\r\nHost: entry\r\n\r\n", {400}),
    "space in the path": (b"GET /hel lo HTTP/1.1\r\nHost: entry\r\n\r\n", {400}),
    "HTTP/0.9 request": (b"GET /hello\r\n\r\n", {400}),
    "control character in the path": (b"GET /he\x01llo HTTP/1.1\r\nHost: entry\r\n\r\n", {400}),
    "chunk size too large": (
        b"POST /echo HTTP/1.1\r\nHost: entry\r\nTransfer-Encoding: chunked"
        b"\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n",
        {400},
    ),
    "two Host headers": (b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {400}),
}

# COMMA-AUTHORITY: a comma in Host is refused by the request-hygiene rules of the entry's
# `frontend http` (issue 31, deliverable 1, branch wt-edgebuild) and by patched HAProxy builds;
# vanilla 3.0.11 answers 200. Passes once both branches are merged.
COMMA_AUTHORITY: dict[str, tuple[bytes, set[int]]] = {
    "comma in Host": (b"GET /hello HTTP/1.1\r\nHost: a,b\r\n\r\n", {400}),
    "comma in an absolute URI's authority": (
        b"GET http://a,b/hello HTTP/1.1\r\nHost: a,b\r\n\r\n",
        {400},
    ),
}
