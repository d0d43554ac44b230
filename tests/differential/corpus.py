"""The request corpus of the differential test: every case sends the same requests to a
cluster and returns an *observation*, a flat dict of what a client can rely on (status, body,
the headers clients read, framing, streaming order, a timing class). Observations hold no
values that change from run to run (ids become <sent>/<generated>/<id>, times become
classes), so the two modes' observations compare field by field and the report is stable.

Cases run in phases: `empty` before the first deploy, `apps` once the corpus apps run,
`root` once an app on route prefix `/` was added.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from . import wire
from .wire import Connection, Response

Observation = dict[str, Any]

PHASES = ("empty", "apps", "root")
MB10 = 10 * 1024 * 1024
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
SENT_REQUEST_ID = "diff-request-id-0001"
# Response headers a client reads; everything else is summarised by its name only.
CLIENT_HEADERS = ("content-type", "connection", "server", "cache-control", "location", "allow")
# Present in every response of both modes and never interesting.
IGNORED_HEADER_NAMES = {"date"}
STREAM_LINES, STREAM_DELAY_S = 5, 0.3
GRPC_TIMEOUT_S = 10.0


@dataclass
class Target:
    """Where a case sends its requests: the cluster's published 127.0.0.1 ports."""

    http_port: int
    grpc_port: int
    pb2: Any  # demo_pb2 generated from examples/demo/demo.proto
    pb2_grpc: Any


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    phase: str
    sends: str  # what the case sends, for the report
    run: Callable[[Target], Observation]
    # Runs in a thread beside the phase's other cases (a case that mostly waits).
    background: bool = False


CASES: list[Case] = []


def case(
    name: str, group: str, sends: str, phase: str = "apps", *, background: bool = False
) -> Callable[..., Any]:
    def register(function: Callable[[Target], Observation]) -> Callable[[Target], Observation]:
        assert phase in PHASES, phase
        assert all(c.name != name for c in CASES), f"duplicate case {name}"
        CASES.append(Case(name, group, phase, sends, function, background))
        return function

    return register


# -- normalisation ----------------------------------------------------------------------------


def pattern(size: int) -> bytes:
    """The bytes /api/bytes serves (diff_apps.pattern)."""
    block = bytes(range(256))
    return block * (size // 256) + block[: size % 256]


def id_class(value: str | None, sent: str | None = None) -> str:
    if not value:
        return "absent"
    if sent is not None and value == sent:
        return "<sent>"
    if UUID_RE.fullmatch(value):
        return "<generated uuid>"
    return "<other>"


def scrub(text: str) -> str:
    """Run-specific ids out of a text body."""
    return UUID_RE.sub("<id>", text.replace(SENT_REQUEST_ID, "<sent id>"))


def scrub_json(value: Any, sent: str | None = None) -> Any:
    if isinstance(value, dict):
        return {
            k: id_class(v, sent) if k == "request_id" else scrub_json(v, sent)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_json(v, sent) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def digest(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def body_of(response: Response, sent: str | None = None) -> Any:
    """The body as the report shows it: parsed JSON or text, run-specific ids scrubbed, and
    a digest of that when it is large."""
    data = response.body
    content_type = response.header("content-type") or ""
    if "json" in content_type:
        try:
            value = scrub_json(json.loads(data), sent)
        except ValueError:
            pass
        else:
            text = json.dumps(value, sort_keys=True)
            return value if len(text) <= 4096 else digest(text.encode())
    if len(data) > 4096:
        return digest(data)
    return scrub(data.decode("utf-8", errors="replace"))


def http_observation(
    response: Response, *, sent_request_id: str | None = None, body: bool = True
) -> Observation:
    obs: Observation = {"status": response.status, "version": response.version}
    for name in CLIENT_HEADERS:
        value = response.header(name)
        if value is not None:
            obs[name] = scrub(value)
    obs["framing"] = response.framing
    obs["x-request-id"] = id_class(response.header("x-request-id"), sent_request_id)
    obs["header_names"] = sorted(
        {k.lower() for k, _ in response.headers} - IGNORED_HEADER_NAMES - {"x-request-id"}
    )
    if body:
        obs["body"] = body_of(response, sent_request_id)
    return obs


def timing_class(pieces: list[tuple[float, bytes]], parts: int, delay_s: float) -> str:
    """`incremental` when the first part reached the client well before the last one was
    produced (a streaming proxy), `buffered` when everything arrived together."""
    if parts < 2 or not pieces:
        return "n/a"
    spread = pieces[-1][0] - pieces[0][0]
    return "incremental" if spread >= (parts - 1) * delay_s * 0.5 else "buffered"


def get(target: Target, path: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return wire.request(target.http_port, "GET", path, headers)


def get_obs(target: Target, path: str, **kwargs: Any) -> Observation:
    return http_observation(get(target, path, kwargs.pop("headers", None)), **kwargs)


# -- before the first deploy --------------------------------------------------------------------


@case("healthz_before_deploy", "health and routes", "GET /-/healthz, no app deployed", "empty")
def healthz_before(t: Target) -> Observation:
    return get_obs(t, "/-/healthz")


@case("routes_before_deploy", "health and routes", "GET /-/routes, no app deployed", "empty")
def routes_before(t: Target) -> Observation:
    return get_obs(t, "/-/routes")


@case("unknown_path_before_deploy", "routes", "GET /anything, no app deployed", "empty")
def unknown_before(t: Target) -> Observation:
    return get_obs(t, "/anything")


# -- health and routes ------------------------------------------------------------------------


@case("healthz_after_deploy", "health and routes", "GET /-/healthz with apps running")
def healthz_after(t: Target) -> Observation:
    return get_obs(t, "/-/healthz")


@case("routes_after_deploy", "health and routes", "GET /-/routes with apps running")
def routes_after(t: Target) -> Observation:
    return get_obs(t, "/-/routes")


@case("healthz_head_method", "health and routes", "HEAD /-/healthz")
def healthz_head(t: Target) -> Observation:
    return http_observation(wire.request(t.http_port, "HEAD", "/-/healthz"))


# -- routes and prefixes ----------------------------------------------------------------------


def route_case(name: str, path: str, sends: str, phase: str = "apps") -> None:
    case(name, "routes", sends, phase)(lambda t: get_obs(t, path))


route_case("route_prefix_exact", "/api/v1", "GET /api/v1 (app v1's prefix, exactly)")
route_case("route_prefix_trailing_slash", "/api/v1/", "GET /api/v1/ (trailing slash)")
route_case("route_longest_prefix", "/api/v1/items", "GET /api/v1/items (/api and /api/v1 match)")
route_case("route_prefix_boundary", "/api/v10", "GET /api/v10 (not under /api/v1)")
route_case("route_fastapi_root_no_slash", "/api", "GET /api (FastAPI app's root, no slash)")
route_case("route_fastapi_root_slash", "/api/", "GET /api/ (FastAPI app's root)")
route_case("route_fastapi_unknown", "/api/nope", "GET /api/nope (in the app, no such endpoint)")
route_case("route_unknown", "/nothing/here", "GET /nothing/here (no app, no root app)")
route_case("route_case_sensitive", "/API/v1", "GET /API/v1 (prefix in upper case)")
route_case("root_app_root", "/", "GET / (app on route prefix /)", "root")
route_case("root_app_catch_all", "/nothing/here", "GET /nothing/here (root app catches it)", "root")
route_case("root_app_keeps_longer", "/api/v1/x", "GET /api/v1/x with a root app", "root")


@case("routes_with_root_app", "health and routes", "GET /-/routes with an app on /", "root")
def routes_root(t: Target) -> Observation:
    return get_obs(t, "/-/routes")


@case("route_unknown_post", "routes", "POST /nothing/here with a 1 KB body")
def unknown_post(t: Target) -> Observation:
    return http_observation(wire.request(t.http_port, "POST", "/nothing/here", body=b"x" * 1024))


# -- methods ------------------------------------------------------------------------------------


def method_case(method: str, body: bytes | None = None) -> None:
    sends = f"{method} /api/echo/m" + (f" with a {len(body)}-byte body" if body else "")

    def run(t: Target) -> Observation:
        headers = [("Content-Type", "application/json")] if body else None
        return http_observation(wire.request(t.http_port, method, "/api/echo/m", headers, body))

    case(f"method_{method.lower()}", "methods", sends)(run)


for _method, _body in (
    ("GET", None),
    ("POST", b'{"k": "v"}'),
    ("PUT", b'{"k": "v"}'),
    ("PATCH", b'{"k": "v"}'),
    ("DELETE", None),
    ("HEAD", None),
    ("OPTIONS", None),
    ("PURGE", None),
):
    method_case(_method, _body)


# -- query strings and path encoding ------------------------------------------------------------


def echo_case(name: str, group: str, target_path: str, sends: str) -> None:
    case(name, group, sends)(lambda t: get_obs(t, target_path))


for _name, _query in (
    ("query_simple", "a=1&b=two"),
    ("query_repeated_key", "a=1&a=2&a=3"),
    ("query_encoded", "q=hello%20world&amp=%26%3D%2B&plus=a+b"),
    ("query_flag_and_empty", "flag&empty=&=novalue"),
    ("query_utf8", "name=%C3%A9t%C3%A9"),
    ("query_4kb", "long=" + "q" * 4096),
):
    echo_case(_name, "query strings", f"/api/echo?{_query}", f"GET /api/echo?{_query[:60]}")

for _name, _path, _sends in (
    ("path_percent_space", "/api/echo/a%20b", ""),
    ("path_encoded_slash", "/api/echo/a%2Fb", ""),
    ("path_utf8", "/api/echo/%C3%A9t%C3%A9", ""),
    (
        "path_raw_utf8",
        "/api/echo/\u00e9t\u00e9".encode().decode("latin-1"),
        "GET /api/echo/\u00e9t\u00e9 (raw UTF-8 bytes, not percent-encoded)",
    ),
    ("path_dot_segments", "/api/echo/../echo/x", ""),
    ("path_double_slash", "/api//echo/x", ""),
    ("path_semicolon", "/api/echo/x;param=1", ""),
    ("path_encoded_prefix", "/%61pi/echo/x", "GET /%61pi/echo/x (%61 is `a`)"),
):
    echo_case(_name, "path encoding", _path, _sends or f"GET {_path}")


# -- bodies -------------------------------------------------------------------------------------


@case("upload_10mb", "large bodies", "POST /api/echo with a 10 MB body (Content-Length)")
def upload_10mb(t: Target) -> Observation:
    data = pattern(MB10)
    response = wire.request(t.http_port, "POST", "/api/echo/up", body=data, timeout_s=120)
    obs = http_observation(response)
    echoed = json.loads(response.body) if response.status == 200 else {}
    obs["body"] = {
        "body_bytes": echoed.get("body_bytes"),
        "sha256_matches": echoed.get("body_sha256") == hashlib.sha256(data).hexdigest(),
    }
    return obs


@case("download_10mb", "large bodies", "GET /api/bytes?n=10485760 (10 MB response)")
def download_10mb(t: Target) -> Observation:
    response = wire.request(t.http_port, "GET", f"/api/bytes?n={MB10}", timeout_s=120)
    obs = http_observation(response, body=False)
    obs["content-length"] = response.header("content-length")
    obs["body"] = {
        "bytes": len(response.body),
        "matches": response.body == pattern(MB10),
    }
    return obs


@case("upload_chunked", "chunked uploads", "POST 1 MB as 16 chunks (Transfer-Encoding: chunked)")
def upload_chunked(t: Target) -> Observation:
    data = pattern(1024 * 1024)
    with Connection(t.http_port) as conn:
        conn.send_request("POST", "/api/echo/chunked", [("Transfer-Encoding", "chunked")])
        step = len(data) // 16
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.read_response()
    obs = http_observation(response)
    echoed = json.loads(response.body) if response.status == 200 else {}
    obs["body"] = {
        "body_bytes": echoed.get("body_bytes"),
        "sha256_matches": echoed.get("body_sha256") == hashlib.sha256(data).hexdigest(),
        "app_saw_headers": scrub_json(echoed.get("headers")),
    }
    return obs


@case("upload_empty_post", "large bodies", "POST /api/echo with no body and no Content-Length")
def upload_empty(t: Target) -> Observation:
    return http_observation(wire.request(t.http_port, "POST", "/api/echo/empty"))


@case(
    "expect_100_continue",
    "Expect: 100-continue",
    "POST 64 KB with Expect: 100-continue; the body only after a 100 (or 1.5 s)",
)
def expect_continue(t: Target) -> Observation:
    data = pattern(64 * 1024)
    with Connection(t.http_port) as conn:
        conn.send_request(
            "POST",
            "/api/echo/expect",
            [("Expect", "100-continue"), ("Content-Length", str(len(data)))],
        )
        interim = None
        try:
            head = conn.read_interim_or_final(timeout_s=1.5)
            interim = head.status
        except wire.WireError:
            pass  # no interim response in time: send the body anyway (RFC 9110)
        if interim is None or interim == 100:
            conn.send(data)
        response = conn.read_response()
    obs = http_observation(response)
    obs["interim_100"] = "received" if interim == 100 else "none" if interim is None else interim
    if response.status == 200:
        echoed = json.loads(response.body)
        obs["body"] = {
            "body_bytes": echoed["body_bytes"],
            "app_saw_headers": scrub_json(echoed["headers"]),
        }
    return obs


# -- HTTP/1.0 and keep-alive --------------------------------------------------------------------


def http10(t: Target, headers: list[tuple[str, str]] | None) -> Observation:
    with Connection(t.http_port) as conn:
        conn.send_request("GET", "/api/echo/h10", headers, version="HTTP/1.0")
        response = conn.read_response()
        closed = conn.closed_by_server()
    obs = http_observation(response)
    obs["server_closed_connection"] = closed
    return obs


@case("http10_get", "HTTP/1.0", "GET /api/echo/h10 HTTP/1.0 (no Connection header)")
def http10_plain(t: Target) -> Observation:
    return http10(t, None)


@case("http10_keep_alive", "HTTP/1.0", "GET HTTP/1.0 with Connection: keep-alive")
def http10_keep(t: Target) -> Observation:
    return http10(t, [("Connection", "keep-alive")])


def on_one_connection(t: Target, paths: list[str]) -> Observation:
    statuses: list[Any] = []
    with Connection(t.http_port) as conn:
        for path in paths:
            try:
                conn.send_request("GET", path)
                response = conn.read_response()
            except (wire.WireError, OSError) as exc:
                statuses.append(f"failed: {type(exc).__name__}")
                break
            statuses.append(response.status)
        closed = conn.closed_by_server()
    return {"statuses": statuses, "server_closed_connection_after": closed}


@case("keepalive_reuse", "keep-alive", "5 GETs on one HTTP/1.1 connection")
def keepalive_reuse(t: Target) -> Observation:
    return on_one_connection(t, [f"/api/echo/k{i}" for i in range(5)])


@case("keepalive_after_404", "keep-alive", "GET /nothing (404), then GET /api/echo, one connection")
def keepalive_404(t: Target) -> Observation:
    return on_one_connection(t, ["/nothing", "/api/echo/after"])


@case(
    "keepalive_after_500", "keep-alive", "GET /api/raise (500), then GET /api/echo, one connection"
)
def keepalive_500(t: Target) -> Observation:
    return on_one_connection(t, ["/api/raise", "/api/echo/after"])


@case("keepalive_across_apps", "keep-alive", "GET /api/echo, /api/v1, /mux on one connection")
def keepalive_apps(t: Target) -> Observation:
    return on_one_connection(t, ["/api/echo/a", "/api/v1", "/mux", "/-/healthz"])


# -- large headers ------------------------------------------------------------------------------


def header_case(name: str, size: int) -> None:
    def run(t: Target) -> Observation:
        response = wire.request(t.http_port, "GET", "/api/echo/h", [("X-Large", "h" * size)])
        obs = http_observation(response, body=False)
        if response.status == 200:
            obs["app_saw_bytes"] = len(json.loads(response.body)["headers"]["x-large"][0])
        else:
            obs["body"] = body_of(response)
        return obs

    case(name, "large headers", f"GET /api/echo with one {size // 1024} KB header")(run)


header_case("request_header_8kb", 8 * 1024)
header_case("request_header_15kb", 15 * 1024)
header_case("request_header_32kb", 32 * 1024)


@case("request_headers_100", "large headers", "GET /api/echo with 100 extra headers")
def many_headers(t: Target) -> Observation:
    headers = [(f"X-Extra-{i}", f"value-{i}") for i in range(100)]
    response = wire.request(t.http_port, "GET", "/api/echo/many", headers)
    obs = http_observation(response, body=False)
    if response.status == 200:
        obs["app_saw_header_count"] = json.loads(response.body)["header_count"]
    return obs


@case(
    "response_header_12kb", "large headers", "GET /api/big-header?n=12000 (12 KB response header)"
)
def response_header_12(t: Target) -> Observation:
    response = get(t, "/api/big-header?n=12000")
    obs = http_observation(response)
    obs["x-big_bytes"] = len(response.header("x-big") or "")
    return obs


@case(
    "response_header_20kb", "large headers", "GET /api/big-header?n=20000 (20 KB response header)"
)
def response_header_20(t: Target) -> Observation:
    response = get(t, "/api/big-header?n=20000")
    obs = http_observation(response)
    obs["x-big_bytes"] = len(response.header("x-big") or "")
    return obs


# -- status codes -------------------------------------------------------------------------------


for _code in (204, 304, 418, 503):
    echo_case(f"status_{_code}", "status codes", f"/api/status/{_code}", f"GET /api/status/{_code}")


# -- streaming ----------------------------------------------------------------------------------


@case(
    "stream_lines", "streaming", f"GET /api/stream: {STREAM_LINES} lines, {STREAM_DELAY_S}s apart"
)
def stream_lines(t: Target) -> Observation:
    response = get(t, f"/api/stream?n={STREAM_LINES}&delay={STREAM_DELAY_S}")
    obs = http_observation(response, body=False)
    obs["lines"] = response.body.decode().splitlines()
    obs["timing"] = timing_class(response.pieces, STREAM_LINES, STREAM_DELAY_S)
    return obs


@case("server_sent_events", "streaming", "GET /api/sse: 3 events, 0.3 s apart (text/event-stream)")
def sse(t: Target) -> Observation:
    response = get(t, "/api/sse?n=3&delay=0.3", headers=[("Accept", "text/event-stream")])
    obs = http_observation(response, body=False)
    events = [e for e in response.body.decode().split("\n\n") if e.strip()]
    obs["events"] = events
    obs["timing"] = timing_class(response.pieces, 3, 0.3)
    return obs


# -- WebSockets ---------------------------------------------------------------------------------


def ws_handshake_obs(response: Response) -> Observation:
    obs = http_observation(response, body=response.status != 101)
    obs["upgrade"] = (response.header("upgrade") or "").lower() or None
    return obs


@case("websocket_echo", "WebSockets", "WebSocket /api/ws: two messages echoed, client closes")
def ws_echo(t: Target) -> Observation:
    conn, response, ws = wire.ws_connect(t.http_port, "/api/ws")
    with conn:
        obs = ws_handshake_obs(response)
        if ws is None:
            return obs
        received = []
        for text in ("hello", "x" * 70000):
            ws.send_text(text)
            frame = ws.receive()
            received.append(frame.payload.decode()[:40] + f" ({len(frame.payload)} bytes)")
        ws.close(1000)
        reply = ws.receive()
        obs["messages"] = received
        obs["close_reply"] = int.from_bytes(reply.payload[:2], "big") if reply.opcode == 8 else None
    return obs


@case("websocket_server_close", "WebSockets", "WebSocket /api/ws: the app closes with code 4000")
def ws_server_close(t: Target) -> Observation:
    conn, response, ws = wire.ws_connect(t.http_port, "/api/ws")
    with conn:
        obs = ws_handshake_obs(response)
        if ws is None:
            return obs
        ws.send_text("bye")
        frame = ws.receive()
        obs["close_code"] = int.from_bytes(frame.payload[:2], "big") if frame.opcode == 8 else None
        obs["close_reason"] = frame.payload[2:].decode() if frame.opcode == 8 else None
    return obs


# Serve's uvicorn pings every WebSocket every 20 s; HAProxy (no `timeout tunnel` in Ray 2.60's
# config) would close a tunnel idle in both directions after RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S.
WS_PING_WAIT_S = 30


@case(
    "websocket_idle_server_ping",
    "WebSockets",
    f"WebSocket /api/ws left idle: a ping from the server within {WS_PING_WAIT_S} s, "
    "then a message echoed",
    background=True,
)
def ws_idle(t: Target) -> Observation:
    # Serve's request timeout (2 s here) applies to a WebSocket too: `0` lifts it for this one.
    conn, response, ws = wire.ws_connect(
        t.http_port,
        "/api/ws",
        timeout_s=WS_PING_WAIT_S + 5,
        headers=[("X-Request-Timeout-Seconds", "0")],
    )
    with conn:
        obs: Observation = {"status": response.status}
        if ws is None:
            return obs
        started = time.monotonic()
        try:
            frame = ws.receive(WS_PING_WAIT_S, stop_at_ping=True)
            waited = time.monotonic() - started
            obs["first_frame"] = "ping" if frame.opcode == 0x9 else f"opcode {frame.opcode}"
            obs["after"] = "15-25 s" if 15 <= waited < 25 else f"{waited:.0f} s"
        except wire.WireError as exc:
            obs["first_frame"] = f"none ({exc})"
        ws.send_text("still there")
        obs["echo_after_idle"] = ws.receive().payload.decode()
        ws.close(1000)
    return obs


@case(
    "websocket_request_timeout",
    "WebSockets",
    "WebSocket /api/ws idle for 4 s under http_options.request_timeout_s 2",
    background=True,
)
def ws_timeout(t: Target) -> Observation:
    conn, response, ws = wire.ws_connect(t.http_port, "/api/ws")
    with conn:
        obs: Observation = {"status": response.status}
        if ws is None:
            return obs
        started = time.monotonic()
        try:
            frame = ws.receive(4.0)
            obs["server_sent"] = f"opcode {frame.opcode}"
            if frame.opcode == 0x8:
                obs["close_code"] = int.from_bytes(frame.payload[:2], "big")
        except wire.WireError as exc:
            obs["server_sent"] = "nothing, connection closed" if "closed" in str(exc) else "nothing"
        waited = time.monotonic() - started
        obs["after"] = (
            "about 2 s"
            if 1.5 <= waited < 3
            else "4 s (still open)"
            if waited >= 3.9
            else f"{waited:.1f} s"
        )
    return obs


@case("websocket_unknown_route", "WebSockets", "WebSocket upgrade on /nothing (no app)")
def ws_unknown(t: Target) -> Observation:
    conn, response, _ = wire.ws_connect(t.http_port, "/nothing")
    with conn:
        return ws_handshake_obs(response)


@case("websocket_on_http_endpoint", "WebSockets", "WebSocket upgrade on /api/echo/ws (HTTP only)")
def ws_on_http(t: Target) -> Observation:
    conn, response, _ = wire.ws_connect(t.http_port, "/api/echo/ws")
    with conn:
        return ws_handshake_obs(response)


# -- request ids --------------------------------------------------------------------------------


@case("request_id_given", "request IDs", f"GET /api/echo with X-Request-ID: {SENT_REQUEST_ID}")
def request_id_given(t: Target) -> Observation:
    response = get(t, "/api/echo/rid", headers=[("X-Request-ID", SENT_REQUEST_ID)])
    obs = http_observation(response, sent_request_id=SENT_REQUEST_ID, body=False)
    echoed = json.loads(response.body)
    obs["app_request_id"] = id_class(echoed["request_id"], SENT_REQUEST_ID)
    obs["app_saw_header"] = id_class(
        (echoed["headers"].get("x-request-id") or [None])[0], SENT_REQUEST_ID
    )
    return obs


@case("request_id_generated", "request IDs", "GET /api/echo without X-Request-ID")
def request_id_generated(t: Target) -> Observation:
    response = get(t, "/api/echo/rid")
    obs = http_observation(response, body=False)
    echoed = json.loads(response.body)
    returned = response.header("x-request-id")
    obs["app_request_id"] = id_class(echoed["request_id"])
    obs["app_id_equals_response_header"] = echoed["request_id"] == returned
    return obs


@case("request_id_on_404", "request IDs", "GET /nothing with X-Request-ID (no app)")
def request_id_404(t: Target) -> Observation:
    response = get(t, "/nothing", headers=[("X-Request-ID", SENT_REQUEST_ID)])
    return http_observation(response, sent_request_id=SENT_REQUEST_ID)


# -- model multiplexing -------------------------------------------------------------------------


MUX_REQUESTS = 8


def replicas_for_model(t: Target, path: str, header: str) -> Observation:
    """How many replicas answered MUX_REQUESTS requests for one model id (after one warm-up
    request that loads it and a pause for Serve to learn where it is loaded)."""
    model = f"m-{uuid.uuid4().hex[:8]}"
    headers = [(header, model)]
    first = get(t, path, headers=headers)
    if first.status != 200:
        return {"status": first.status, "body": body_of(first)}
    time.sleep(2.0)
    answers = [json.loads(get(t, path, headers=headers).body) for _ in range(MUX_REQUESTS)]
    return {
        "status": 200,
        "model_id_seen_by_replica": sorted(
            {"<sent>" if a["model_id"] == model else a["model_id"] for a in answers}
        ),
        "replicas_serving_the_model": len({a["replica"] for a in answers}),
    }


@case(
    "multiplexing_ingress",
    "model multiplexing",
    f"{MUX_REQUESTS} GETs /mux with one serve_multiplexed_model_id (2 replicas)",
)
def mux_ingress(t: Target) -> Observation:
    return replicas_for_model(t, "/mux", "serve_multiplexed_model_id")


@case(
    "multiplexing_ingress_dash_header",
    "model multiplexing",
    f"{MUX_REQUESTS} GETs /mux with serve-multiplexed-model-id (dashes)",
)
def mux_ingress_dash(t: Target) -> Observation:
    return replicas_for_model(t, "/mux", "serve-multiplexed-model-id")


@case(
    "multiplexing_via_handle",
    "model multiplexing",
    f"{MUX_REQUESTS} GETs /muxhandle: the ingress passes the id on with handle.options",
)
def mux_handle(t: Target) -> Observation:
    return replicas_for_model(t, "/muxhandle", "serve_multiplexed_model_id")


# -- errors, timeouts, disconnects --------------------------------------------------------------


@case("replica_raises", "errors", "GET /api/raise (the handler raises)")
def raises(t: Target) -> Observation:
    return get_obs(t, "/api/raise")


@case("request_timeout", "errors", "GET /api/slow?s=5 with http_options.request_timeout_s 2")
def timeout(t: Target) -> Observation:
    started = time.monotonic()
    response = wire.request(t.http_port, "GET", "/api/slow?s=5", timeout_s=20)
    took = time.monotonic() - started
    obs = http_observation(response)
    obs["answered_after"] = "about 2 s" if 1.5 <= took < 4 else "about 5 s" if took < 7 else ">7 s"
    return obs


@case(
    "client_disconnect",
    "errors",
    "GET /api/track (3 s handler), client closes after 0.5 s; then asks the app what happened",
)
def disconnect(t: Target) -> Observation:
    key = uuid.uuid4().hex[:12]
    conn = Connection(t.http_port)
    conn.send_request("GET", f"/api/track?key={key}&s=3")
    time.sleep(0.5)
    conn.close()
    time.sleep(3.5)
    state = json.loads(get(t, f"/api/tracked?key={key}").body)["state"]
    return {"handler": state}


# -- gRPC ---------------------------------------------------------------------------------------


def _identity(data: bytes) -> bytes:
    return data


ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def grpc_details(text: str) -> dict[str, str]:
    """A status message as its last line plus whether it carried a traceback (whose lines
    hold pids, addresses and actor ids)."""
    lines = [ln for ln in ANSI_RE.sub("", text).splitlines() if ln.strip()]
    traceback = any(ln.lstrip().startswith('File "') for ln in lines)
    return {
        "details": scrub(lines[-1].strip()) if lines else "",
        "details_kind": "traceback" if traceback else "message" if lines else "none",
    }


def grpc_error_obs(error: grpc.RpcError) -> Observation:
    call: Any = error
    return {
        "code": call.code().name,
        **grpc_details(call.details() or ""),
        "trailing_metadata": sorted(k for k, _ in call.trailing_metadata() or ()),
    }


def grpc_call(
    t: Target, method: str, request: Any, metadata: tuple[tuple[str, str], ...]
) -> Observation:
    with grpc.insecure_channel(f"127.0.0.1:{t.grpc_port}") as channel:
        stub = t.pb2_grpc.GreeterStub(channel)
        try:
            reply, call = getattr(stub, method).with_call(
                request, metadata=metadata, timeout=GRPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            return grpc_error_obs(error)
        return {
            "code": call.code().name,
            "reply": {"message": reply.message, "app": reply.app},
            "initial_metadata": sorted(k for k, _ in call.initial_metadata() or ()),
            "trailing_metadata": sorted(k for k, _ in call.trailing_metadata() or ()),
        }


APP_METADATA = (("application", "greeter"),)


@case("grpc_unary", "gRPC", "Greeter.SayHello with metadata application=greeter")
def grpc_unary(t: Target) -> Observation:
    return grpc_call(t, "SayHello", t.pb2.HelloRequest(name="diff"), APP_METADATA)


@case("grpc_request_id", "gRPC", "Greeter.SayHello with metadata request_id")
def grpc_request_id(t: Target) -> Observation:
    metadata = (*APP_METADATA, ("request_id", SENT_REQUEST_ID))
    return grpc_call(t, "SayHello", t.pb2.HelloRequest(name="rid"), metadata)


@case("grpc_server_streaming", "gRPC", "Greeter.SayHelloStream count=4, 0.3 s apart")
def grpc_stream(t: Target) -> Observation:
    with grpc.insecure_channel(f"127.0.0.1:{t.grpc_port}") as channel:
        stub = t.pb2_grpc.GreeterStub(channel)
        started = time.monotonic()
        arrivals: list[tuple[float, bytes]] = []
        messages = []
        try:
            for reply in stub.SayHelloStream(
                t.pb2.HelloStreamRequest(name="s", count=4),
                metadata=APP_METADATA,
                timeout=GRPC_TIMEOUT_S,
            ):
                arrivals.append((time.monotonic() - started, b""))
                messages.append(f"{reply.index}: {reply.message}")
        except grpc.RpcError as error:
            return {**grpc_error_obs(error), "messages": messages}
    return {"code": "OK", "messages": messages, "timing": timing_class(arrivals, 4, 0.3)}


@case("grpc_missing_application", "gRPC", "Greeter.SayHello without `application` metadata")
def grpc_missing(t: Target) -> Observation:
    return grpc_call(t, "SayHello", t.pb2.HelloRequest(name="none"), ())


@case("grpc_unknown_application", "gRPC", "Greeter.SayHello with application=nope")
def grpc_unknown(t: Target) -> Observation:
    return grpc_call(t, "SayHello", t.pb2.HelloRequest(name="x"), (("application", "nope"),))


@case("grpc_replica_raises", "gRPC", "Greeter.SayHello that raises in the replica")
def grpc_raises(t: Target) -> Observation:
    return grpc_call(t, "SayHello", t.pb2.HelloRequest(name="raise"), APP_METADATA)


def serve_api_call(t: Target, method: str) -> Observation:
    with grpc.insecure_channel(f"127.0.0.1:{t.grpc_port}") as channel:
        call = channel.unary_unary(
            f"/ray.serve.RayServeAPIService/{method}",
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        try:
            reply, info = call.with_call(b"", timeout=GRPC_TIMEOUT_S)
        except grpc.RpcError as error:
            return grpc_error_obs(error)
        # HAProxy answers Healthz itself with a trailers-only response: no message at all.
        decoded = None if reply is None else sorted(wire.strings_of_field_1(reply))
        return {"code": info.code().name, "reply": decoded, **grpc_details(info.details() or "")}


@case("grpc_healthz", "gRPC", "RayServeAPIService.Healthz with apps running")
def grpc_healthz(t: Target) -> Observation:
    return serve_api_call(t, "Healthz")


@case("grpc_list_applications", "gRPC", "RayServeAPIService.ListApplications with apps running")
def grpc_list(t: Target) -> Observation:
    return serve_api_call(t, "ListApplications")


@case("grpc_healthz_before_deploy", "gRPC", "RayServeAPIService.Healthz, no app deployed", "empty")
def grpc_healthz_before(t: Target) -> Observation:
    return serve_api_call(t, "Healthz")


@case("grpc_call_before_deploy", "gRPC", "Greeter.SayHello, no app deployed", "empty")
def grpc_before(t: Target) -> Observation:
    return grpc_call(t, "SayHello", t.pb2.HelloRequest(name="early"), APP_METADATA)


# Cases that a setting changes: run again against a node whose HAProxy has the setting
# (compose.diff.yaml: the workers run RAY_SERVE_HAPROXY_TUNE_BUFSIZE=65536).
BUFSIZE_CASES = ("request_header_15kb", "request_header_32kb", "response_header_20kb")


def run_case(c: Case, target: Target) -> Observation:
    """A case's observation; a case that fails on the client side is an observation too."""
    try:
        return c.run(target)
    except Exception as exc:
        return {"client_error": f"{type(exc).__name__}: {scrub(str(exc))[:200]}"}
