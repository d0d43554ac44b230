"""Group "Timeouts": HAProxy's timeouts, and how long a reload may keep old requests.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import IntRange
from .limits import MAX_HARD_STOP_AFTER_S, MAX_TIMEOUT_S
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class TimeoutSettings:
    timeout_client_s: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S",
            Group.TIMEOUTS,
            IntRange(1, MAX_TIMEOUT_S, "seconds"),
            "Client inactivity timeout in seconds.",
            default=3600,
            ray=True,
        )
    )
    timeout_server_s: int | None = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S",
            Group.TIMEOUTS,
            IntRange(1, MAX_TIMEOUT_S, "seconds"),
            "Backend server inactivity timeout in seconds. Unset: no timeout (long "
            "streaming responses are never cut).",
            unset_means="unset (no timeout)",
            ray=True,
        )
    )
    timeout_connect_s: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S",
            Group.TIMEOUTS,
            IntRange(0, MAX_TIMEOUT_S, "seconds"),
            "TCP connect timeout to a replica in seconds; `0` means none. Deliberately Ray's "
            "5 s, not the guide's none: a bounded connect is what lets HAProxy's "
            "`retry-on conn-failure` and `option redispatch` move a request to another "
            "replica when a node dies, instead of hanging on the dead one.",
            default=5,
            ray=True,
        )
    )
    hard_stop_after_s: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
            Group.TIMEOUTS,
            IntRange(1, MAX_HARD_STOP_AFTER_S, "seconds"),
            "HAProxy's `hard-stop-after`: how long an HAProxy process replaced by a reload (every "
            "change of replicas) keeps serving the requests it holds before it kills them, i.e. "
            "the longest a request in flight across a scaling event can still run. Unset: the "
            "server timeout (else the client timeout) plus Serve's 90 s keep-alive, in which an "
            "idle connection may still bring the old process one last request. Inactivity "
            "timeouts do not bound a stream: for long streams set at least the longest stream "
            "+ 90. Refused below RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S. Ray keeps a freed replica "
            "port unused for this + 30 s. Does not delay a container's stop "
            "(RSH_SHUTDOWN_TIMEOUT_S bounds that).",
            derived="RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S, else _TIMEOUT_CLIENT_S, + 90",
            ray=True,
        )
    )
    no_replica_timeout_s: int = setting(
        Spec(
            "RSH_NO_REPLICA_TIMEOUT_S",
            Group.TIMEOUTS,
            IntRange(0, MAX_TIMEOUT_S, "seconds"),
            "How long a request that finds no replica of its application UP may wait: "
            "Ray's HAProxy then hands it to Serve's fallback proxy on the head, which holds it "
            "until a replica exists again (tens of seconds when a node holding every replica "
            "of an application died). Within this time it is served, else answered `503` with "
            "`Retry-After: 5` (the runtime's HAProxy launcher gives such requests Serve's "
            "`x-request-timeout-seconds`), and a gRPC call ends `UNAVAILABLE` (HAProxy's "
            "server timeout for it: the longest silence of the fallback). Raise it above your "
            "replicas' start time for applications that scale from zero; `0`: no bound (Ray's "
            "behaviour).",
            default=10,
        )
    )
