"""Rules between port settings: ranges in order, apart, and clear of every fixed port."""

from __future__ import annotations

from collections.abc import Mapping

from .context import RuleContext

# Ports of Serve's fallback proxy, which Ray 2.60 runs on the head in HAProxy mode (Ray's
# variables and defaults, ray/serve/_private/constants.py).
FALLBACK_PROXY_PORTS = (
    ("RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", 8500),
    ("RAY_SERVE_FALLBACK_PROXY_GRPC_PORT", 9500),
)
# Settings that become `ray start` ports (ray_process.ray_start_argv), besides RSH_RAY_PORT and
# RSH_DASHBOARD_PORT; None means Ray picks a free port.
RAY_FIXED_PORTS = (
    "node_manager_port",
    "object_manager_port",
    "metrics_export_port",
    "dashboard_agent_grpc_port",
    "dashboard_agent_listen_port",
    "runtime_env_agent_port",
    "ray_client_server_port",
)
# Ports a node binds at fixed numbers (the syslog port is UDP, the rest TCP).
FIXED_PORTS = (
    "http_port",
    "grpc_port",
    "metrics_port",
    "stats_port",
    "syslog_port",
    "ray_port",
    "dashboard_port",
    *RAY_FIXED_PORTS,
)
TCP_PORTS = tuple(name for name in FIXED_PORTS if name != "syslog_port")
REPLICA_RANGES = (
    ("HTTP", "direct_ingress_min_http_port", "direct_ingress_max_http_port"),
    ("gRPC", "direct_ingress_min_grpc_port", "direct_ingress_max_grpc_port"),
)


def _fixed(ctx: RuleContext, name: str) -> bool:
    # 0: gRPC off; None: Ray picks a free port (where? not ours to know)
    return ctx.valid(name) and ctx.values[name] not in (0, None)


def _ordered_replica_ranges(ctx: RuleContext) -> list[tuple[str, str, str]]:
    """(label, min field, max field) of each replica range that parsed and is in order."""
    return [
        (label, low, high)
        for label, low, high in REPLICA_RANGES
        if ctx.valid(low, high) and ctx.values[low] <= ctx.values[high]
    ]


def replica_ranges_ordered(ctx: RuleContext) -> None:
    """Each replica port range's minimum is at most its maximum."""
    for _, low, high in REPLICA_RANGES:
        if ctx.valid(low, high) and ctx.values[low] > ctx.values[high]:
            ctx.error(
                low, f"greater than {ctx.env_of(high)}={ctx.values[high]}; allowed: at most that"
            )


def replica_ranges_disjoint(ctx: RuleContext) -> None:
    """The replica gRPC range does not overlap the HTTP range."""
    ranges = _ordered_replica_ranges(ctx)
    if len(ranges) != 2:
        return
    (_, l1, h1), (_, l2, h2) = ranges
    v = ctx.values
    if v[l1] <= v[h2] and v[l2] <= v[h1]:
        ctx.error(
            l2,
            f"replica gRPC range {v[l2]}-{v[h2]} overlaps the HTTP range "
            f"{v[l1]}-{v[h1]} ({ctx.env_of(l1)}..{ctx.env_of(h1)}); "
            "allowed: disjoint ranges",
        )


def fixed_ports_outside_replica_ranges(ctx: RuleContext) -> None:
    """No fixed port lies in a replica range (a replica could take it first)."""
    v = ctx.values
    for label, low, high in _ordered_replica_ranges(ctx):
        for port_name in FIXED_PORTS:
            if not _fixed(ctx, port_name):
                continue
            port = v[port_name]
            if v[low] <= port <= v[high]:
                # Blame the variable the user set: the fixed port if it came from the
                # environment, the range otherwise.
                ours = port_name if ctx.from_environment(port_name) else low
                ctx.error(
                    ours,
                    f"{ctx.env_of(port_name)}={port} lies in the replica {label} port range "
                    f"{v[low]}-{v[high]} ({ctx.env_of(low)}..{ctx.env_of(high)}); allowed: "
                    "fixed ports outside the direct-ingress ranges",
                    value=v[ours],
                )


def tcp_ports_distinct(ctx: RuleContext) -> None:
    """TCP ports bound on the same node differ (the syslog port is UDP)."""
    seen: dict[int, str] = {}
    for port_name in TCP_PORTS:
        if not _fixed(ctx, port_name):
            continue
        port = ctx.values[port_name]
        if port not in seen:
            seen[port] = port_name
            continue
        # Blame the one the user set (a default that now collides was not their choice).
        first = seen[port]
        ours, other = port_name, first
        if not ctx.from_environment(port_name) and ctx.from_environment(first):
            ours, other = first, port_name
        ctx.error(ours, f"same port as {ctx.env_of(other)}; allowed: a port no other setting uses")


def _worker_range(ctx: RuleContext) -> tuple[int, int] | None:
    """Ray's worker port range when it parsed and is in order."""
    if not ctx.valid("min_worker_port", "max_worker_port"):
        return None
    low, high = ctx.values["min_worker_port"], ctx.values["max_worker_port"]
    return (low, high) if low < high else None


def _worker_blame(ctx: RuleContext) -> str:
    return "max_worker_port" if ctx.from_environment("max_worker_port") else "min_worker_port"


def worker_range_ordered(ctx: RuleContext) -> None:
    """Ray's worker port range: min below max (Ray's rule)."""
    if not ctx.valid("min_worker_port", "max_worker_port"):
        return
    low, high = ctx.values["min_worker_port"], ctx.values["max_worker_port"]
    if low >= high:
        ctx.error(
            "min_worker_port",
            f"not below RSH_MAX_WORKER_PORT={high}; allowed: a lower port (Ray needs a range)",
        )


def worker_range_clear_of_replica_ranges(ctx: RuleContext) -> None:
    """Ray's worker ports do not overlap a replica range."""
    workers = _worker_range(ctx)
    if workers is None:
        return
    low, high = workers
    v = ctx.values
    for label, r_low, r_high in _ordered_replica_ranges(ctx):
        if low <= v[r_high] and v[r_low] <= high:
            ctx.error(
                _worker_blame(ctx),
                f"worker port range {low}-{high} overlaps the replica {label} range "
                f"{v[r_low]}-{v[r_high]}; allowed: disjoint ranges",
            )


def fixed_ports_outside_worker_range(ctx: RuleContext) -> None:
    """No fixed port lies in Ray's worker range (a worker could take it first)."""
    workers = _worker_range(ctx)
    if workers is None:
        return
    low, high = workers
    for port_name in FIXED_PORTS:
        if not _fixed(ctx, port_name):
            continue
        port = ctx.values[port_name]
        if low <= port <= high:
            ours = port_name if ctx.from_environment(port_name) else _worker_blame(ctx)
            ctx.error(
                ours,
                f"{ctx.env_of(port_name)}={port} lies in Ray's worker port range "
                f"{low}-{high} (RSH_MIN_WORKER_PORT..RSH_MAX_WORKER_PORT); allowed: fixed ports "
                "outside it",
                value=ctx.values[ours],
            )


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text and text.strip() else default
    except ValueError:
        return default  # Ray itself refuses it at start; not ours to report


def fallback_proxy_ports(env: Mapping[str, str]) -> list[tuple[str, int]]:
    """(variable, port) of Serve's fallback proxy on the head, as Ray will read them."""
    return [
        (variable, _int_or(env.get(variable), default))
        for variable, default in FALLBACK_PROXY_PORTS
    ]


def ports_clear_of_fallback_proxy(ctx: RuleContext) -> None:
    """Serve's fallback proxy on the head (HAProxy mode) binds its ports, with Ray's defaults
    unless its variables say otherwise; HAProxy's frontends must not collide with them."""
    for port_name in ("http_port", "grpc_port"):
        if not ctx.valid(port_name) or ctx.values[port_name] == 0:
            continue
        for variable, fallback in fallback_proxy_ports(ctx.env):
            if ctx.values[port_name] == fallback:
                ctx.error(
                    port_name,
                    f"same port as Serve's fallback proxy on the head ({variable}="
                    f"{fallback}); allowed: a port no other setting uses",
                )
