"""HTTP/1.x and WebSocket on raw sockets, so the differential cases see the wire as it is:
status lines and versions, interim 100 responses, chunk boundaries and when each piece of a
body arrived, whether the server closed the connection. `requests` would hide all of that.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
from dataclasses import dataclass, field

CRLF = b"\r\n"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WireError(Exception):
    """The peer did something a client cannot make sense of (or nothing, in time)."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    # (seconds since the request was sent, bytes) per piece of body as it was decoded: one
    # entry per chunk of a chunked body, per recv() otherwise.
    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    interim: list[int] = field(default_factory=list)  # 1xx statuses before the final one
    seconds_to_headers: float = 0.0
    seconds_total: float = 0.0
    framing: str = ""  # chunked | content-length | close | none

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return ", ".join(values) if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Connection:
    """One TCP connection to 127.0.0.1:port that can carry several requests."""

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_s = timeout_s
        self.buffer = b""
        self.started = time.monotonic()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        version: str = "HTTP/1.1",
    ) -> None:
        """Sends a request with Host (unless given) and Content-Length when there is a body."""
        lines = [f"{method} {target} {version}"]
        given = {k.lower() for k, _ in headers or []}
        if "host" not in given:
            lines.append("Host: 127.0.0.1")
        lines += [f"{k}: {v}" for k, v in headers or []]
        if body is not None and "content-length" not in given and "transfer-encoding" not in given:
            lines.append(f"Content-Length: {len(body)}")
        self.started = time.monotonic()
        self.send("\r\n".join(lines).encode("latin-1") + CRLF + CRLF + (body or b""))

    # -- receiving -------------------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Reads more bytes into the buffer; False on EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WireError("timed out waiting for the server")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise WireError("timed out waiting for the server") from None
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buffer += data
        return True

    def _line(self, deadline: float) -> bytes:
        while CRLF not in self.buffer:
            if not self._fill(deadline):
                raise WireError(f"connection closed mid-line ({self.buffer[:80]!r})")
        line, self.buffer = self.buffer.split(CRLF, 1)
        return line

    def _head(self, deadline: float) -> tuple[str, int, str, list[tuple[str, str]]]:
        while CRLF + CRLF not in self.buffer:
            if not self._fill(deadline):
                if not self.buffer:
                    raise WireError("connection closed before a response")
                raise WireError(f"connection closed mid-headers ({self.buffer[:80]!r})")
        head, self.buffer = self.buffer.split(CRLF + CRLF, 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise WireError(f"not an HTTP status line: {status_line!r}")
        headers = []
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers

    def read_interim_or_final(self, timeout_s: float) -> Response:
        """The next response head (1xx included); the body is not read."""
        deadline = time.monotonic() + timeout_s
        version, status, reason, headers = self._head(deadline)
        return Response(version, status, reason, headers)

    def read_response(
        self, *, method: str = "GET", timeout_s: float | None = None, skip_interim: bool = True
    ) -> Response:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        interim: list[int] = []
        while True:
            version, status, reason, headers = self._head(deadline)
            if 100 <= status < 200 and status != 101 and skip_interim:
                interim.append(status)
                continue
            break
        response = Response(version, status, reason, headers, interim=interim)
        response.seconds_to_headers = time.monotonic() - self.started
        self._read_body(response, method, deadline)
        response.seconds_total = time.monotonic() - self.started
        return response

    def _piece(self, response: Response, data: bytes) -> None:
        if data:
            response.pieces.append((time.monotonic() - self.started, data))
            response.body += data

    def _read_body(self, response: Response, method: str, deadline: float) -> None:
        status = response.status
        if method == "HEAD" or status in (101, 204, 304) or 100 <= status < 200:
            response.framing = "none"
            return
        encoding = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if "chunked" in encoding:
            response.framing = "chunked"
            while True:
                size_line = self._line(deadline)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._line(deadline):  # trailers, up to the empty line
                        pass
                    return
                while len(self.buffer) < size + 2:
                    if not self._fill(deadline):
                        raise WireError("connection closed mid-chunk")
                self._piece(response, self.buffer[:size])
                self.buffer = self.buffer[size + 2 :]
        elif length is not None:
            response.framing = "content-length"
            remaining = int(length.split(",")[0])
            if self.buffer:
                taken = self.buffer[:remaining]
                self.buffer = self.buffer[remaining:]
                remaining -= len(taken)
                self._piece(response, taken)
            while remaining > 0:
                if not self._fill(deadline):
                    raise WireError(f"connection closed with {remaining} body bytes missing")
                taken = self.buffer[:remaining]
                self.buffer = self.buffer[remaining:]
                remaining -= len(taken)
                self._piece(response, taken)
        else:
            response.framing = "close"
            self._piece(response, self.buffer)
            self.buffer = b""
            while self._fill(deadline):
                self._piece(response, self.buffer)
                self.buffer = b""

    def closed_by_server(self, wait_s: float = 0.5) -> bool:
        """Whether the server closed the connection (EOF within wait_s) after a response."""
        if self.buffer:
            return False
        self.sock.settimeout(wait_s)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except TimeoutError:
            return False
        except OSError:
            return True


def request(
    port: int,
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    *,
    version: str = "HTTP/1.1",
    timeout_s: float = 30.0,
) -> Response:
    """One request on its own connection (closed afterwards)."""
    with Connection(port, timeout_s) as conn:
        conn.send_request(method, target, headers, body, version)
        return conn.read_response(method=method)


# -- WebSocket (RFC 6455), client side ---------------------------------------------------------


@dataclass
class Frame:
    opcode: int
    payload: bytes


def ws_accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class WebSocket:
    """A client WebSocket over a Connection whose handshake answered 101."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send_text(self, text: str) -> None:
        self.conn.send(ws_frame(0x1, text.encode()))

    def close(self, code: int = 1000) -> None:
        self.conn.send(ws_frame(0x8, struct.pack("!H", code)))

    def _need(self, n: int, deadline: float) -> bytes:
        while len(self.conn.buffer) < n:
            if not self.conn._fill(deadline):
                raise WireError("connection closed mid-frame")
        data, self.conn.buffer = self.conn.buffer[:n], self.conn.buffer[n:]
        return data

    def receive(self, timeout_s: float = 10.0, *, stop_at_ping: bool = False) -> Frame:
        """The next data or close frame; answers pings on the way (and returns the ping
        frame too when `stop_at_ping`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            first, second = self._need(2, deadline)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._need(2, deadline))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._need(8, deadline))
            mask = self._need(4, deadline) if second & 0x80 else b""
            payload = self._need(length, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self.conn.send(ws_frame(0xA, payload))
                if stop_at_ping:
                    return Frame(opcode, payload)
                continue
            if opcode == 0xA:  # pong
                continue
            return Frame(opcode, payload)


def ws_connect(
    port: int,
    path: str,
    timeout_s: float = 10.0,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[Connection, Response, WebSocket | None]:
    """Opens a WebSocket; the socket is returned open whatever the server answered."""
    key = base64.b64encode(os.urandom(16)).decode()
    conn = Connection(port, timeout_s)
    conn.send_request(
        "GET",
        path,
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
            *(headers or []),
        ],
    )
    response = conn.read_response(timeout_s=timeout_s)
    if response.status != 101:
        return conn, response, None
    if response.header("sec-websocket-accept") != ws_accept_for(key):
        raise WireError(f"bad Sec-WebSocket-Accept {response.header('sec-websocket-accept')!r}")
    return conn, response, WebSocket(conn)


def strings_of_field_1(data: bytes) -> list[str]:
    """Repeated string field 1 of a serialized protobuf message, read without its stubs (Serve's
    ListApplicationsResponse; Healthz's message is field 1 too)."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        i += 1
        length = shift = 0
        while True:
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if tag == 0x0A:
            out.append(data[i : i + length].decode())
        i += length
    return out
