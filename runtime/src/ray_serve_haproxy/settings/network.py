"""Group "Node address and Ray's ports": where other nodes and firewalls reach this node.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import IntRange, NodeIP, Port
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class NetworkSettings:
    # With `--network host` a node's ports are the machine's: fixed ones let a firewall open
    # exactly what the other nodes need. Unset: Ray's own choice (a random free port).
    node_ip: str | None = setting(
        Spec(
            "RSH_NODE_IP",
            Group.NETWORK,
            NodeIP(),
            "The address this node advertises to the others (`ray start --node-ip-address`); "
            "checked to be an address of this host (the machine's, with `--network host`). Set "
            "it on a host with several interfaces, where Ray's guess (the interface of the "
            "default route) may be one the other nodes cannot reach.",
            unset_means="unset (Ray picks the default route's address)",
        )
    )
    node_manager_port: int | None = setting(
        Spec(
            "RSH_NODE_MANAGER_PORT",
            Group.NETWORK,
            Port(),
            "The raylet's port (`--node-manager-port`), which every other node connects to.",
            unset_means="unset (random)",
        )
    )
    object_manager_port: int | None = setting(
        Spec(
            "RSH_OBJECT_MANAGER_PORT",
            Group.NETWORK,
            Port(),
            "The object manager's port (`--object-manager-port`), which every other node "
            "connects to.",
            unset_means="unset (random)",
        )
    )
    min_worker_port: int = setting(
        Spec(
            "RSH_MIN_WORKER_PORT",
            Group.NETWORK,
            IntRange(1024, 65535),
            "Lowest port of Ray's worker processes, replicas included (`--min-worker-port`); "
            "workers on other nodes connect to them.",
            default=10002,
        )
    )
    max_worker_port: int = setting(
        Spec(
            "RSH_MAX_WORKER_PORT",
            Group.NETWORK,
            IntRange(1024, 65535),
            "Highest worker port (`--max-worker-port`); the range bounds how many workers a "
            "node can run.",
            default=19999,
        )
    )
    metrics_export_port: int | None = setting(
        Spec(
            "RSH_METRICS_EXPORT_PORT",
            Group.NETWORK,
            Port(),
            "Port of Ray's own Prometheus metrics (`--metrics-export-port`), on all interfaces.",
            unset_means="unset (random)",
        )
    )
    dashboard_agent_grpc_port: int | None = setting(
        Spec(
            "RSH_DASHBOARD_AGENT_GRPC_PORT",
            Group.NETWORK,
            Port(),
            "The dashboard agent's gRPC port (`--dashboard-agent-grpc-port`), which the "
            "head's dashboard connects to.",
            unset_means="unset (random)",
        )
    )
    dashboard_agent_listen_port: int = setting(
        Spec(
            "RSH_DASHBOARD_AGENT_LISTEN_PORT",
            Group.NETWORK,
            Port(),
            "The dashboard agent's HTTP port (`--dashboard-agent-listen-port`), on the node's "
            "address, which the head's dashboard connects to.",
            default=52365,
        )
    )
    runtime_env_agent_port: int | None = setting(
        Spec(
            "RSH_RUNTIME_ENV_AGENT_PORT",
            Group.NETWORK,
            Port(),
            "The runtime-env agent's port (`--runtime-env-agent-port`), on the node's address.",
            unset_means="unset (random)",
        )
    )
    ray_client_server_port: int = setting(
        Spec(
            "RSH_RAY_CLIENT_SERVER_PORT",
            Group.NETWORK,
            Port(),
            "Head: the Ray Client server's port (`--ray-client-server-port`). Whoever reaches "
            "it can run code on the cluster: keep it closed to everyone but the cluster's users.",
            default=10001,
        )
    )
