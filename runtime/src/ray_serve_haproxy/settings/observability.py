"""Group "Metrics and logging": HAProxy's metrics, stats page and logs.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..access_log import AccessLogMode
from ..value_types import Choice, Flag01, LogTarget, Port
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class ObservabilitySettings:
    metrics_port: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_METRICS_PORT",
            Group.OBSERVABILITY,
            Port(),
            "Port of HAProxy's Prometheus exporter (`/metrics`), on all interfaces.",
            default=9101,
            ray=True,
        )
    )
    stats_port: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_STATS_PORT",
            Group.OBSERVABILITY,
            Port(),
            "Port of HAProxy's stats page, which Ray binds on all interfaces without "
            "authentication: do not publish it beyond the container unless you mean to.",
            default=8404,
            ray=True,
        )
    )
    access_log: str = setting(
        Spec(
            "RSH_ACCESS_LOG",
            Group.OBSERVABILITY,
            Choice(*(m.value for m in AccessLogMode)),
            "Which requests HAProxy logs: `all`; `errors`, only responses that are not "
            "2xx/3xx, gRPC calls failed in the headers and abnormal terminations (aborted, "
            "timed out, retried); `off`, no requests (HAProxy's own events, such as servers "
            "going down, still are). The runtime's HAProxy launcher applies it to the config "
            "Ray generates; requests dropped here cost no log line anywhere. Default `errors`: "
            "about half the CPU per request of `all` on the node taking the traffic, and no "
            'log growth from healthy traffic (docs/operating.md, "Access log").',
            default=AccessLogMode.ERRORS.value,
        )
    )
    metrics_enabled: bool = setting(
        Spec(
            "RAY_SERVE_HAPROXY_METRICS_ENABLED",
            Group.OBSERVABILITY,
            Flag01(),
            "Serve's own metrics in HAProxy mode (Ray 2.60's variable): one datagram per HTTP "
            "request to the HAProxyManager actor, which parses it into `serve_num_http_*` and "
            "`serve_http_request_latency_ms`, plus `serve_haproxy_*` node gauges. `0` saves "
            "that CPU per request; HAProxy's own Prometheus exporter "
            "(`RAY_SERVE_HAPROXY_METRICS_PORT`) still counts requests and times per backend.",
            default=True,
            ray=True,
        )
    )
    syslog_port: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SYSLOG_PORT",
            Group.OBSERVABILITY,
            Port(),
            "UDP port of the runtime's syslog receiver on 127.0.0.1, which prints what arrives "
            "to the container's stdout. It runs only when `RAY_SERVE_HAPROXY_LOG_TARGET` is "
            "`127.0.0.1:<this port>` (e.g. a syslog sidecar under Kubernetes); by default "
            "HAProxy writes the container's stdout itself. Ray 2.60 does not read this "
            "variable. Ports below 1024 need `net.ipv4.ip_unprivileged_port_start` at or below "
            "it (Docker sets 0; Kubernetes does not, use e.g. 5140 there).",
            default=514,
        )
    )
    log_target: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_LOG_TARGET",
            Group.OBSERVABILITY,
            LogTarget(),
            "Where HAProxy sends its log (Ray 2.60's variable). Unset: `stdout`, which the "
            "runtime's HAProxy launcher points at the container's stdout (`docker logs`, "
            "`kubectl logs`), one line per request in HAProxy's httplog format, written by "
            "HAProxy itself. Set to a host:port or /path to send syslog elsewhere; "
            "`127.0.0.1:<RAY_SERVE_HAPROXY_SYSLOG_PORT>` runs the runtime's receiver.",
            derived="stdout (the container's)",
            ray=True,
        )
    )
