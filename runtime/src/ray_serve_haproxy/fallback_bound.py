"""A request that finds no replica of its application UP is answered within a bound.

Ray 2.60 lists, in each application's HTTP backend of a node's HAProxy, its replicas and, as a
`backup` server, the head's Serve proxy (`SERVE_PROXY_ACTOR-fallback-...`, port 8500). With no
replica UP, HAProxy sends the request there, and Serve's proxy holds it until a replica exists
again: when a node that held every replica of an application died, as long as Serve takes to
start new ones (44.6 s seen, `0/1003/0/44607/45610 200`). Ray's config sets no `timeout server`
(unless RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S) and no `timeout queue`, and neither would help: the
request is not in HAProxy's queue, and a server timeout would cut every long request.

Serve's proxy takes a per-request timeout from the `x-request-timeout-seconds` header and
answers 408 when it expires. This edit, per HTTP backend with a fallback server, marks a request
that arrives while none of the backend's replicas is UP, gives it that header
(RSH_NO_REPLICA_TIMEOUT_S) and turns the fallback's 408 into a 503 with Retry-After. A request
that reached a replica never gets the header. Not bounded: a request that was sent to a replica
HAProxy still thought UP and went to the fallback on a retry (the first second or so after a node
died, until the health checks or three live errors take the dead replicas out).

gRPC backends (their fallback is Serve's gRPC proxy over HTTP/2, which reads no such header): a
call marked the same way gets HAProxy's own server timeout set to the bound (`set-timeout
server`: the longest wait for the fallback's next bytes, so a stream that keeps sending is never
cut), and HAProxy's error then (504, which Ray's errorfile turns into a 500: gRPC UNKNOWN)
becomes a 503 with Retry-After, which gRPC clients see as UNAVAILABLE, the retryable status.

Imported by the HAProxy launcher on every start: nothing beyond access_log.py.
"""

from __future__ import annotations

from .access_log import section_spans

HEADER = "x-request-timeout-seconds"  # Serve's SERVE_HTTP_REQUEST_TIMEOUT_S_HEADER
VAR = "txn.rsh_no_replica"
RETRY_AFTER_S = 5
MARK = "# ray-serve-haproxy: no replica UP"
ENV = "RSH_NO_REPLICA_TIMEOUT_S"
MARKED = f"{{ var({VAR}) -m bool }}"


def _mark(backend: str, replicas: list[str]) -> str:
    """The rule that marks a request arriving while none of `replicas` is UP."""
    none_up = " ".join(f"!{{ srv_is_up({backend}/{name}) }}" for name in replicas)
    return f"    http-request set-var({VAR}) bool(true)" + (f" if {none_up}" if none_up else "")


def _rules(backend: str, replicas: list[str], timeout_s: int, *, grpc: bool) -> list[str]:
    if grpc:  # HAProxy's own timeout; its error (a 500 after Ray's errorfile) made a 503
        what = "call"
        outcome = f"without an answer within {timeout_s} s ({ENV}) it ends UNAVAILABLE (HTTP 503)."
        bound = [
            f"http-request set-timeout server {timeout_s}s if {MARKED}",
            f"http-after-response set-status 503 if {MARKED} {{ status 500:504 }}",
            f"http-after-response set-header Retry-After {RETRY_AFTER_S} if {MARKED}"
            " { status 503 }",
        ]
    else:  # Serve's own timeout header; its 408 made a 503
        what = "request"
        outcome = f"it answers within {timeout_s} s ({ENV}), a 503 with Retry-After."
        bound = [
            f"http-request set-header {HEADER} {timeout_s} if {MARKED}",
            f"http-response set-status 503 if {MARKED} {{ status 408 }}",
            f"http-response set-header Retry-After {RETRY_AFTER_S} if {MARKED} {{ status 503 }}",
        ]
    return [
        f"    {MARK}: Serve's fallback proxy would hold the {what} until a replica returns;",
        f"    # {outcome}",
        _mark(backend, replicas),
        *(f"    {rule}" for rule in bound),
    ]


def edit(text: str, timeout_s: int) -> str:
    """`text` with the rules above in every backend that has a backup server, HTTP or gRPC
    (none when `timeout_s` is 0, or when they are there already)."""
    if timeout_s <= 0:
        return text
    lines = text.split("\n")
    for header, end in reversed(section_spans(lines, "backend")):
        words = lines[header].split()
        body = lines[header + 1 : end]
        if len(words) < 2 or any(line.strip().startswith(MARK) for line in body):
            continue
        if any(line.split()[:1] == ["server-template"] for line in body):
            continue  # replicas this edit cannot name (not how Ray 2.60 writes them)
        servers = [line.split() for line in body if line.split()[:1] == ["server"]]
        backups = [w for w in servers if "backup" in w[3:]]
        if not backups:
            continue  # no fallback: nothing holds a request
        replicas = [w[1] for w in servers if "backup" not in w[3:]]
        grpc = any("h2" in w[3:] for w in backups)  # `proto h2`: gRPC's fallback
        lines[header + 1 : header + 1] = _rules(words[1], replicas, timeout_s, grpc=grpc)
    return "\n".join(lines)
