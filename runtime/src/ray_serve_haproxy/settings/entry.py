"""Group "Entry": the settings of the `entry` role.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import Duration, EntryNode, EntryNodeList, Flag01, Host, IntRange
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class EntrySettings:
    entry_nodes: tuple[EntryNode, ...] | None = setting(
        Spec(
            "RSH_ENTRY_NODES",
            Group.ENTRY,
            EntryNodeList(),
            "Entry: the nodes whose HAProxy it balances over, `host[:port]` (port default "
            "`RSH_HTTP_PORT`; gRPC goes to `RSH_GRPC_PORT` on the same hosts). A host name is "
            "resolved by HAProxy while it runs (the nameservers of /etc/resolv.conf, no "
            "search domains: use names the nameserver answers as they are) and every address "
            "it returns becomes a server, so a compose service name follows `--scale`; an IP "
            "address is used as given. Required for `entry`.",
            unset_means="unset (required by `entry`)",
        )
    )
    entry_metrics_host: str = setting(
        Spec(
            "RSH_ENTRY_METRICS_HOST",
            Group.ENTRY,
            Host(),
            "Entry: interface of its Prometheus exporter (`/metrics` on "
            "`RAY_SERVE_HAPROXY_METRICS_PORT`). `127.0.0.1` keeps it inside the container; "
            "`0.0.0.0` lets a Prometheus on the same network scrape it (compose sets that; the "
            "port is not published on the host). Read-only, no authentication.",
            default="127.0.0.1",
        )
    )
    entry_slots: int = setting(
        Spec(
            "RSH_ENTRY_SLOTS",
            Group.ENTRY,
            IntRange(1, 1024),
            "Entry: servers per host name of `RSH_ENTRY_NODES`, i.e. the most addresses one "
            "name can resolve to (nodes of a scaled compose service).",
            default=16,
        )
    )
    entry_check_inter: str = setting(
        Spec(
            "RSH_ENTRY_CHECK_INTER",
            Group.ENTRY,
            Duration(),
            "Entry: interval (and timeout) of its health check of each node: `/-/healthz` "
            "answers 200 and `/-/routes` lists at least one route (for gRPC, also Serve's gRPC "
            "health call on the gRPC port).",
            default="1s",
        )
    )
    entry_check_fall: int = setting(
        Spec(
            "RSH_ENTRY_CHECK_FALL",
            Group.ENTRY,
            IntRange(1, 1000),
            "Entry: failed checks before a node is taken out. A refused or timed-out "
            "connection on live traffic makes the next check decisive.",
            default=2,
        )
    )
    entry_check_rise: int = setting(
        Spec(
            "RSH_ENTRY_CHECK_RISE",
            Group.ENTRY,
            IntRange(1, 1000),
            "Entry: passed checks before a node gets traffic (again).",
            default=2,
        )
    )
    entry_connect_timeout: str = setting(
        Spec(
            "RSH_ENTRY_CONNECT_TIMEOUT",
            Group.ENTRY,
            Duration(),
            "Entry: TCP connect timeout to a node. A connection that fails or times out is "
            "retried on another node (nothing was sent yet), so a short one turns a dead "
            "node into a short delay instead of an error.",
            default="500ms",
        )
    )
    # Limits against hostile clients (docs/edge-security.md).
    entry_timeout_http_request_s: int = setting(
        Spec(
            "RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S",
            Group.ENTRY,
            IntRange(1, 3600, "seconds"),
            "Entry: time a client has to send a request's line and headers (HAProxy's `timeout "
            "http-request`), and with `RSH_ENTRY_BUFFER_REQUEST_BODY` its body up to one buffer; "
            "counted from the accept for a new connection, so a connection that sends nothing "
            "is closed after it. Sheds slowloris and idle connections; the time a request then "
            "takes to answer is not bounded by it.",
            default=10,
        )
    )
    entry_timeout_keep_alive_s: int = setting(
        Spec(
            "RSH_ENTRY_TIMEOUT_KEEP_ALIVE_S",
            Group.ENTRY,
            IntRange(1, 3600, "seconds"),
            "Entry: how long an idle client connection (HTTP/1 keep-alive between requests, "
            "HTTP/2 without a stream) stays open (HAProxy's `timeout http-keep-alive`); the "
            "client timeout (`RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S`) no longer holds idle ones. "
            "Serve's own keep-alive (90 s), so a client sees the same behind the entry as on a "
            "node.",
            default=90,
        )
    )
    entry_buffer_request_body: bool = setting(
        Spec(
            "RSH_ENTRY_BUFFER_REQUEST_BODY",
            Group.ENTRY,
            Flag01(),
            "Entry, HTTP port: `1` waits for a request's body (up to one buffer, "
            "`RAY_SERVE_HAPROXY_TUNE_BUFSIZE`) before passing it on, within "
            "`RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S` (else 408): a slow body then holds an entry "
            "connection, never a replica. `0` for apps that read a small request body as a "
            "stream while it is sent. Never on the gRPC port (client streams).",
            default=True,
        )
    )
    entry_h2_max_concurrent_streams: int = setting(
        Spec(
            "RSH_ENTRY_H2_MAX_CONCURRENT_STREAMS",
            Group.ENTRY,
            IntRange(1, 10_000),
            "Entry: streams one HTTP/2 client connection may have open at once "
            "(`tune.h2.fe.max-concurrent-streams`, HAProxy 2.8 and 3.0).",
            default=100,
        )
    )
    entry_h2_glitches_threshold: int = setting(
        Spec(
            "RSH_ENTRY_H2_GLITCHES_THRESHOLD",
            Group.ENTRY,
            IntRange(0, 1_000_000),
            "Entry: protocol glitches (HAProxy's count of suspicious HTTP/2 frames: resets "
            "of streams it is processing, tiny CONTINUATION frames, invalid frames, ...) after "
            "which an HTTP/2 client connection is closed (`tune.h2.fe.glitches-threshold`, "
            "HAProxy 2.8.25+ and 3.0). `0`: never closed for it.",
            default=1000,
        )
    )
    entry_log_errors_per_connection: int = setting(
        Spec(
            "RSH_ENTRY_LOG_ERRORS_PER_CONNECTION",
            Group.ENTRY,
            IntRange(0, 1_000_000),
            "Entry: error lines one client connection may write to the log (responses of "
            "status 400 and above, streams the client reset included); its later errors are "
            "not logged but still counted in /metrics and `show stat`, so one abusive "
            "connection cannot flood the log. `0`: log every error.",
            default=10,
        )
    )
    entry_max_bad_requests_per_connection: int = setting(
        Spec(
            "RSH_ENTRY_MAX_BAD_REQUESTS_PER_CONNECTION",
            Group.ENTRY,
            IntRange(0, 1_000_000),
            "Entry: a client connection that had this many requests answered 400 (malformed, "
            "or reset by the client before an answer: HTTP/2 rapid reset) is closed at its "
            "next request (`silent-drop`). HTTP/1 closes after one 400 anyway; this bounds "
            "HTTP/2 connections, whose resets HAProxy 2.8 and 3.0 do not count as glitches. "
            "`0`: never.",
            default=1000,
        )
    )
    entry_per_client_maxconn: int = setting(
        Spec(
            "RSH_ENTRY_PER_CLIENT_MAXCONN",
            Group.ENTRY,
            IntRange(0, 1_000_000),
            "Entry: most concurrent connections from one client address; more are refused "
            "at accept. `0`: no per-client limit. Behind Docker's port proxy (a published "
            "port with the userland proxy) every client has the same address, so only use it "
            "where the entry sees real client addresses (host networking, a PROXY-protocol "
            "balancer, `userland-proxy: false`).",
            default=0,
        )
    )
