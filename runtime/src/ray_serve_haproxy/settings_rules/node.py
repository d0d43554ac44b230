"""Rules about the node itself: its role's required settings, its address, `ray start`."""

from __future__ import annotations

import shlex

from .context import Role, RuleContext

# `ray start` options that a validated setting owns: RSH_RAY_START_ARGS must not repeat them
# (Ray would take the last one, unchecked).
OWNED_RAY_START_OPTIONS = {
    "--node-ip-address": "node_ip",
    "--node-manager-port": "node_manager_port",
    "--object-manager-port": "object_manager_port",
    "--min-worker-port": "min_worker_port",
    "--max-worker-port": "max_worker_port",
    "--worker-port-list": "min_worker_port",
    "--metrics-export-port": "metrics_export_port",
    "--dashboard-agent-grpc-port": "dashboard_agent_grpc_port",
    "--dashboard-agent-listen-port": "dashboard_agent_listen_port",
    "--runtime-env-agent-port": "runtime_env_agent_port",
    "--ray-client-server-port": "ray_client_server_port",
}


def ray_start_args_not_owned(ctx: RuleContext) -> None:
    """RSH_RAY_START_ARGS does not set an option a validated setting owns."""
    if not ctx.valid("ray_start_args"):
        return
    args = ctx.values["ray_start_args"]
    given = {arg.split("=", 1)[0] for arg in args}
    for option in sorted(given & set(OWNED_RAY_START_OPTIONS)):
        owner = ctx.env_of(OWNED_RAY_START_OPTIONS[option])
        ctx.error(
            "ray_start_args",
            f"sets {option}, which {owner} owns; allowed: set {owner} instead (validated)",
            value=shlex.join(args),
        )


def node_ip_is_local(ctx: RuleContext) -> None:
    """RSH_NODE_IP is an address of this host."""
    if not ctx.valid("node_ip") or ctx.values["node_ip"] is None:
        return
    local = ctx.facts.local_addresses
    if local is None or ctx.values["node_ip"] in local:
        return
    shown = ", ".join(f"{ip} ({name})" for ip, name in local.items()) or "none found"
    ctx.error(
        "node_ip",
        f"not an address of this host (with --network host: of the machine); allowed: one "
        f"of {shown}",
    )


def worker_has_head_address(ctx: RuleContext) -> None:
    """`worker` needs the head's address."""
    if ctx.role == Role.WORKER and ctx.values["head_address"] is None:
        ctx.error(
            "head_address",
            "required for `worker`; allowed: host:port of the head's GCS, e.g. head:6379",
            value="",
        )


def entry_has_nodes(ctx: RuleContext) -> None:
    """`entry` needs the nodes it balances over."""
    if ctx.role == Role.ENTRY and ctx.values["entry_nodes"] is None:
        ctx.error(
            "entry_nodes",
            "required for `entry`; allowed: the nodes' host[:port], e.g. head,worker",
            value="",
        )
