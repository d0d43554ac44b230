"""The entry: an HAProxy in front of every node's HAProxy, so no single node is the way in.

`ray-serve-haproxy entry` renders two files into RSH_STATE_DIR from templates: the entry's
haproxy.cfg (nodes from RSH_ENTRY_NODES, health checks, retries) and a supervisord config that
runs the image's HAProxy on it. It runs no Ray. The entry knows nodes, not replicas: each node's
own HAProxy (Ray's HAProxyManager) routes to the replicas.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .rendering import template_environment
from .settings import Settings
from .value_types import EntryNode

ENTRY_CONFIG = "entry-haproxy.cfg"
ENTRY_SOCKET = "entry-admin.sock"
# The backend whose servers are the nodes' HTTP ports (healthcheck, status, tests).
HTTP_BACKEND = "nodes_http"
GRPC_BACKEND = "nodes_grpc"


def config_path(state_dir: str) -> Path:
    return Path(state_dir) / ENTRY_CONFIG


def socket_path(state_dir: str) -> Path:
    return Path(state_dir) / ENTRY_SOCKET


@dataclass(frozen=True)
class NodeServer:
    """One line of the entry's backends: a name resolved at run time (server-template), or an
    address (server)."""

    name: str
    host: str
    http_port: int
    resolved: bool

    @property
    def address(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def server_name(node: EntryNode) -> str:
    """A name HAProxy accepts, unique per host[:port] (server-template appends 1, 2, ...)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", node.host)
    name = base if node.port is None else f"{base}_{node.port}"
    return name if not node.is_address else f"node_{name}"


def node_servers(values: Settings) -> list[NodeServer]:
    return [
        NodeServer(
            name=server_name(node),
            host=node.host,
            http_port=node.port or values.http_port,
            resolved=not node.is_address,
        )
        for node in values.entry_nodes or ()
    ]


def render_haproxy_config(values: Settings, state_dir: str | None = None) -> str:
    nodes = node_servers(values)
    return (
        template_environment()
        .get_template("entry-haproxy.cfg.j2")
        .render(
            maxconn=values.maxconn,
            nbthread=values.nbthread,
            hard_stop_after_s=values.hard_stop_after_s,
            socket_path=socket_path(state_dir or values.state_dir),
            resolved_nodes=any(node.resolved for node in nodes),
            connect_timeout=values.entry_connect_timeout,
            timeout_client_s=values.timeout_client_s,
            timeout_server_s=values.timeout_server_s,
            timeout_http_request_s=values.entry_timeout_http_request_s,
            timeout_keep_alive_s=values.entry_timeout_keep_alive_s,
            buffer_request_body=values.entry_buffer_request_body,
            h2_max_concurrent_streams=values.entry_h2_max_concurrent_streams,
            h2_glitches_threshold=values.entry_h2_glitches_threshold,
            log_errors_per_connection=values.entry_log_errors_per_connection,
            max_bad_requests=values.entry_max_bad_requests_per_connection,
            per_client_maxconn=values.entry_per_client_maxconn,
            check_inter=values.entry_check_inter,
            check_fall=values.entry_check_fall,
            check_rise=values.entry_check_rise,
            http_port=values.http_port,
            grpc_port=values.grpc_port,
            metrics_host=values.entry_metrics_host,
            metrics_port=values.metrics_port,
            slots=values.entry_slots,
            nodes=nodes,
        )
    )


def haproxy_argv(values: Settings) -> list[str]:
    """HAProxy in the foreground on the entry's config."""
    return [values.haproxy_binary_path, "-db", "-f", str(config_path(values.state_dir))]


def check_config(values: Settings) -> str | None:
    """`haproxy -c` on the rendered config: None when valid, else HAProxy's complaint."""
    argv = [values.haproxy_binary_path, "-c", "-q", "-f", str(config_path(values.state_dir))]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]} -c failed: {exc}"
    if result.returncode == 0:
        return None
    return (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
