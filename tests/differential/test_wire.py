"""The raw HTTP/WebSocket client of the differential test against canned server bytes: it must
report framing, interim responses, pieces and closes exactly as they came."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from . import wire

pytestmark = pytest.mark.unit


def run_server(replies: list[bytes]) -> tuple[int, list[bytes], threading.Thread]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for reply in replies:
                received.append(conn.recv(65536))
                if reply == b"CLOSE":
                    break
                conn.sendall(reply)
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], received, thread


def test_chunked_body_in_pieces_and_trailers() -> None:
    port, received, thread = run_server(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\nT: 1\r\n\r\n"
        ]
    )
    response = wire.request(port, "GET", "/p", [("X-A", "b")])
    thread.join(5)
    assert (response.status, response.framing, response.body) == (200, "chunked", b"hello!")
    assert [p for _, p in response.pieces] == [b"hello", b"!"]
    assert received[0].startswith(b"GET /p HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: b\r\n\r\n")


def test_interim_100_then_final_with_content_length() -> None:
    port, received, thread = run_server(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"]
    )
    response = wire.request(port, "POST", "/u", body=b"abc")
    thread.join(5)
    assert response.interim == [100]
    assert (response.status, response.framing, response.body) == (201, "content-length", b"ok")
    assert b"Content-Length: 3\r\n\r\nabc" in received[0]


def test_body_until_close_and_server_close_seen() -> None:
    port, _, _ = run_server([b"HTTP/1.0 200 OK\r\n\r\nall of it"])  # then it closes
    with wire.Connection(port) as conn:
        conn.send_request("GET", "/", version="HTTP/1.0")
        response = conn.read_response()
        assert (response.version, response.framing, response.body) == (
            "HTTP/1.0",
            "close",
            b"all of it",
        )


def test_keep_alive_connection_stays_open() -> None:
    reply = b"HTTP/1.1 204 No Content\r\n\r\n"
    port, _, thread = run_server([reply, reply, b"CLOSE"])
    with wire.Connection(port) as conn:
        for _ in range(2):
            conn.send_request("GET", "/")
            assert conn.read_response().framing == "none"
        assert not conn.closed_by_server(0.2)
        conn.send_request("GET", "/")
        thread.join(5)
        assert conn.closed_by_server(1.0)


def test_websocket_handshake_ping_and_echo() -> None:
    def server_frame(opcode: int, payload: bytes) -> bytes:
        return struct.pack("!BB", 0x80 | opcode, len(payload)) + payload

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = conn.recv(65536).decode()
            key = next(
                line.split(":", 1)[1].strip()
                for line in request.split("\r\n")
                if line.lower().startswith("sec-websocket-key")
            )
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {wire.ws_accept_for(key)}\r\n\r\n".encode()
                + server_frame(0x9, b"p")
            )
            # The pong (2 + 4 mask + 1 bytes) then the text frame (2 + 4 + 2): one recv may
            # return both, so read by length.
            data = b""
            while len(data) < 15:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            got.extend([data[:7], data[7:]])
            conn.sendall(server_frame(0x1, b"echo"))
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conn, response, ws = wire.ws_connect(listener.getsockname()[1], "/ws")
    with conn:
        assert response.status == 101 and ws is not None
        assert ws.receive(5, stop_at_ping=True).opcode == 0x9
        ws.send_text("hi")
        assert ws.receive(5).payload == b"echo"
    thread.join(5)
    pong, text = got
    assert pong[0] == 0x8A and pong[1] & 0x80  # FIN + pong, masked
    mask = text[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(text[6:])) == b"hi"
