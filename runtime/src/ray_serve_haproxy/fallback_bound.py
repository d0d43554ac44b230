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
died, until the health checks or three live errors take the dead replicas out), and gRPC (its
fallback is Serve's gRPC proxy, which reads no such header).

Imported by the HAProxy launcher on every start: nothing beyond access_log.py.
"""

from __future__ import annotations

from .access_log import section_spans

HEADER = "x-request-timeout-seconds"  # Serve's SERVE_HTTP_REQUEST_TIMEOUT_S_HEADER
VAR = "txn.rsh_no_replica"
RETRY_AFTER_S = 5
MARK = "# ray-serve-haproxy: no replica UP"
ENV = "RSH_NO_REPLICA_TIMEOUT_S"


def _rules(backend: str, replicas: list[str], timeout_s: int) -> list[str]:
    none_up = " ".join(f"!{{ srv_is_up({backend}/{name}) }}" for name in replicas)
    marked = f"{{ var({VAR}) -m bool }}"
    return [
        f"    {MARK}: Serve's fallback proxy would hold the request until a replica returns;",
        f"    # it answers within {timeout_s} s ({ENV}), a 503 with Retry-After.",
        f"    http-request set-var({VAR}) bool(true)" + (f" if {none_up}" if none_up else ""),
        f"    http-request set-header {HEADER} {timeout_s} if {marked}",
        f"    http-response set-status 503 if {marked} {{ status 408 }}",
        f"    http-response set-header Retry-After {RETRY_AFTER_S} if {marked} {{ status 503 }}",
    ]


def edit(text: str, timeout_s: int) -> str:
    """`text` with the rules above in every HTTP backend that has a backup server (none when
    `timeout_s` is 0, or when they are there already)."""
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
        if not backups or any("h2" in w[3:] for w in backups):
            continue  # no fallback, or gRPC's (HTTP/2)
        replicas = [w[1] for w in servers if "backup" not in w[3:]]
        lines[header + 1 : header + 1] = _rules(words[1], replicas, timeout_s)
    return "\n".join(lines)
