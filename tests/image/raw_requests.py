"""Requests written byte by byte (HTTP/1.1 on a raw socket, HTTP/2 frames by hand), so that what
a client library would refuse or normalise reaches the server exactly as written."""

from __future__ import annotations

import re
import socket
import struct

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# HPACK static table entries for :status (RFC 7541, appendix A).
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def http1_status(host: str, port: int, request: bytes, timeout_s: float = 5.0) -> int | None:
    """The status of the first response to `request`, or None when the server closed the
    connection without answering."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return int(match.group(1)) if match else None


def http1_exchange(host: str, port: int, request: bytes, timeout_s: float = 3.0) -> bytes:
    """Everything the server sends back until it closes the connection or falls silent."""
    data = b""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return data


def _hpack_literal(name: str, value: str) -> bytes:
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    out = b"\x00"
    for text in (name.encode(), value.encode()):
        if len(text) > 126:
            raise ValueError("short strings only")
        out += bytes([len(text)]) + text
    return out


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream)


def _status_of(block: bytes) -> int | None:
    """:status from the first field of a response header block (HAProxy sends it first)."""
    if not block:
        return None
    first = block[0]
    if first & 0x80:  # indexed field
        return STATIC_STATUS.get(first & 0x7F)
    if first & 0x0F in (8, 9, 10, 11, 12, 13, 14) and not first & 0x80:  # literal, name :status
        length = block[1] & 0x7F
        if block[1] & 0x80:  # Huffman-coded value: not decoded here
            return None
        return int(block[2 : 2 + length])
    return None


def h2_status(
    host: str, port: int, headers: list[tuple[str, str]], body: bytes = b"", timeout_s: float = 5
) -> int | None:
    """One HTTP/2 request (prior knowledge) with exactly these header fields, in this order;
    the response's :status, or None when the connection was closed or reset without one."""
    block = b"".join(_hpack_literal(n, v) for n, v in headers)
    end_stream = 0x1 if not body else 0
    request = H2_PREFACE + _frame(0x4, 0, 0, b"") + _frame(0x1, 0x4 | end_stream, 1, block) + block
    if body:
        request += _frame(0x0, 0x1, 1, body) + body
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(request)
        buffer = b""
        while True:
            while len(buffer) < 9:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                buffer += chunk
            length = int.from_bytes(buffer[:3], "big")
            kind, flags = buffer[3], buffer[4]
            stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            while len(buffer) < 9 + length:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                buffer += chunk
            payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
            if kind == 0x4 and not flags & 0x1:  # SETTINGS: acknowledge
                sock.sendall(_frame(0x4, 0x1, 0, b""))
            elif kind == 0x1 and stream == 1:  # HEADERS of our stream
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & 0x20:  # PRIORITY
                    payload = payload[5:]
                return _status_of(payload)
            elif kind in (0x3, 0x7) and stream in (0, 1):  # RST_STREAM or GOAWAY
                return None
