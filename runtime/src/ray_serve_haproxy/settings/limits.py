"""Numbers that the declarations, the loader's derivations and its rules share."""

from __future__ import annotations

# Ray's floor for --object-store-memory (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES).
OBJECT_STORE_MINIMUM_BYTES = 75 * 1024 * 1024
# HAProxy timers are 32-bit milliseconds: the largest whole number of seconds that fits.
MAX_TIMEOUT_S = 2_147_483
# HAProxy needs about 2.5 file descriptors per connection with Ray's config (two sockets, plus
# maxconn/4 splice pipes of two fds each) and some for listeners; it refuses to start when the
# hard RLIMIT_NOFILE is lower ("Cannot raise FD limit to N").
HAPROXY_FD_OVERHEAD = 100


def haproxy_fds_needed(maxconn: int) -> int:
    return maxconn * 5 // 2 + HAPROXY_FD_OVERHEAD


def max_maxconn_for(nofile: int) -> int:
    """The largest maxconn whose file descriptors fit in `nofile`."""
    return max(1, (nofile - HAPROXY_FD_OVERHEAD) * 2 // 5)


# Serve's default `http_options.keep_alive_timeout_s`, which Ray writes as HAProxy's `timeout
# http-keep-alive`. After a reload, the old process keeps an idle client connection (Ray sets
# `option idle-close-on-response`) until this expires or the client sends one last request, which
# it then serves: a request can start on an old process up to this long after the reload.
SERVE_KEEP_ALIVE_S = 90
# HAProxy's hard-stop-after, in whole seconds (Ray writes `<n>s`): a 32-bit millisecond timer
# like the timeouts, so a derived value always fits and never falls below the server timeout.
MAX_HARD_STOP_AFTER_S = MAX_TIMEOUT_S
# A node's shutdown keeps this long for `ray stop` and the kill round after HAProxy drained.
RAY_STOP_RESERVE_S = 10


def derived_hard_stop_after(timeout_server_s: int | None, timeout_client_s: int) -> int:
    """The default hard-stop-after: the longest silent wait the timeouts allow (the server
    timeout, else the client timeout) plus the keep-alive window in which one last request
    may still reach an old process."""
    wait = timeout_server_s if timeout_server_s is not None else timeout_client_s
    return min(MAX_HARD_STOP_AFTER_S, wait + SERVE_KEEP_ALIVE_S)


# More HAProxy threads than this rarely helps a single node's ingress (and the guide's default).
MAX_DERIVED_NBTHREAD = 4
