"""Which ports a node listens on, on which interfaces, and who should reach each (`check`).

On a running node the listeners come from /proc (listeners.py); before start, from what the
settings and Ray 2.60 will bind. Each known port is named by the setting that moves it and put
in one of four audiences, so an operator (and the multi-machine docs) can see what to close:

- clients:   Serve's HTTP and gRPC frontends (HAProxy), meant to be reached;
- operators: HAProxy's stats page (no authentication), its Prometheus exporter, the Ray
             dashboard (its REST API deploys code): WARN when reachable beyond loopback;
- code:      GCS and the Ray Client server: whoever reaches them runs code on the cluster,
             WARN beyond loopback, to be opened between the cluster's machines only;
- cluster:   Ray's other ports (raylet, object manager, workers, agents, replicas' direct
             ingress): between the cluster's machines only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .listeners import Listener
from .settings import Settings
from .settings_loader import FALLBACK_PROXY_PORTS, Role

# Prometheus endpoints Ray 2.60's head opens on every interface at fixed ports that no `ray
# start` option moves, only Ray's own variables (autoscaler/_private/constants.py,
# dashboard/consts.py): the autoscaler's and the dashboard's metrics. Read-only, no
# authentication: for monitoring only.
HEAD_METRICS_PORTS = (
    ("AUTOSCALER_METRIC_PORT", 44217, "autoscaler metrics (Prometheus)"),
    ("DASHBOARD_METRIC_PORT", 44227, "dashboard metrics (Prometheus)"),
)


class Audience(StrEnum):
    CLIENTS = "clients"
    OPERATORS = "operators"
    CODE = "code"
    CLUSTER = "cluster"


ADVICE = {
    Audience.CLIENTS: "for clients",
    Audience.OPERATORS: "keep it closed to all but operators and monitoring",
    Audience.CODE: "runs code for whoever reaches it: open it between the cluster's machines only",
    Audience.CLUSTER: "open it between the cluster's machines only",
}


@dataclass(frozen=True)
class Port:
    """A port this node listens on (or will), with what it is and who should reach it."""

    low: int
    high: int
    what: str
    setting: str  # the variable that moves it ("" for Ray's own)
    audience: Audience
    planned_bind: str  # where it listens, as Ray 2.60 binds it ("" : not predicted)

    def holds(self, port: int) -> bool:
        return self.low <= port <= self.high

    @property
    def label(self) -> str:
        ports = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"tcp {ports}" + (f" ({self.setting})" if self.setting else "")


def known_ports(values: Settings, role: Role) -> list[Port]:
    """The ports this node's settings decide, in the order `check` lists them."""
    everywhere, node = "0.0.0.0", "the node's address and 127.0.0.1"
    ports = [
        Port(
            values.http_port,
            values.http_port,
            "Serve HTTP (HAProxy)",
            "RSH_HTTP_PORT",
            Audience.CLIENTS,
            everywhere,
        ),
    ]
    if values.grpc_port:
        ports.append(
            Port(
                values.grpc_port,
                values.grpc_port,
                "Serve gRPC (HAProxy)",
                "RSH_GRPC_PORT",
                Audience.CLIENTS,
                everywhere,
            )
        )
    ports += [
        Port(
            values.stats_port,
            values.stats_port,
            "HAProxy stats page, no authentication",
            "RAY_SERVE_HAPROXY_STATS_PORT",
            Audience.OPERATORS,
            everywhere,
        ),
        Port(
            values.metrics_port,
            values.metrics_port,
            "HAProxy Prometheus exporter",
            "RAY_SERVE_HAPROXY_METRICS_PORT",
            Audience.OPERATORS,
            everywhere,
        ),
    ]
    if role == Role.HEAD:
        ports += [
            Port(
                values.dashboard_port,
                values.dashboard_port,
                "Ray dashboard and REST API (jobs, serve deploy)",
                "RSH_DASHBOARD_PORT",
                Audience.OPERATORS,
                values.dashboard_host,
            ),
            Port(
                values.ray_port,
                values.ray_port,
                "Ray GCS",
                "RSH_RAY_PORT",
                Audience.CODE,
                everywhere,
            ),
            Port(
                values.ray_client_server_port,
                values.ray_client_server_port,
                "Ray Client server",
                "RSH_RAY_CLIENT_SERVER_PORT",
                Audience.CODE,
                node,
            ),
        ]
        for variable, default, what in HEAD_METRICS_PORTS:
            # Ray's variable and its default, like the fallback proxy's below.
            ports.append(Port(default, default, what, variable, Audience.OPERATORS, everywhere))
        for variable, default in FALLBACK_PROXY_PORTS:
            ports.append(
                Port(
                    default,
                    default,
                    "Serve's fallback proxy (HAProxy's backup)",
                    variable,  # Ray's variable; its default shown
                    Audience.CLUSTER,
                    "",
                )
            )
    for low, high, what, setting in (
        (
            values.direct_ingress_min_http_port,
            values.direct_ingress_max_http_port,
            "replicas' HTTP direct ingress",
            "RAY_SERVE_DIRECT_INGRESS_*_HTTP_PORT",
        ),
        (
            values.direct_ingress_min_grpc_port,
            values.direct_ingress_max_grpc_port,
            "replicas' gRPC direct ingress",
            "RAY_SERVE_DIRECT_INGRESS_*_GRPC_PORT",
        ),
    ):
        ports.append(Port(low, high, what, setting, Audience.CLUSTER, everywhere))
    fixed = (
        (values.node_manager_port, "raylet (node manager)", "RSH_NODE_MANAGER_PORT"),
        (values.object_manager_port, "object manager", "RSH_OBJECT_MANAGER_PORT"),
        (values.metrics_export_port, "Ray metrics", "RSH_METRICS_EXPORT_PORT"),
        (values.dashboard_agent_grpc_port, "dashboard agent gRPC", "RSH_DASHBOARD_AGENT_GRPC_PORT"),
        (
            values.dashboard_agent_listen_port,
            "dashboard agent HTTP",
            "RSH_DASHBOARD_AGENT_LISTEN_PORT",
        ),
        (values.runtime_env_agent_port, "runtime-env agent", "RSH_RUNTIME_ENV_AGENT_PORT"),
    )
    for port, what, setting in fixed:
        if port is not None:
            ports.append(Port(port, port, what, setting, Audience.CLUSTER, ""))
    ports.append(
        Port(
            values.min_worker_port,
            values.max_worker_port,
            "Ray worker processes",
            "RSH_MIN/MAX_WORKER_PORT",
            Audience.CLUSTER,
            "",
        )
    )
    return ports


def interfaces_text(bind: str, addresses: Mapping[str, str] | None) -> str:
    """Where a socket bound to `bind` is reachable, naming this host's interfaces."""
    if bind not in ("0.0.0.0", "::"):
        return bind
    if not addresses:
        return f"{bind}: every interface"
    shown = [
        f"{name} {ip}"
        for ip, name in addresses.items()
        if bind == "::" or ":" not in ip  # an IPv6 wildcard takes IPv4 too (dual stack)
    ]
    return f"{bind}: every interface ({', '.join(shown)})"


@dataclass(frozen=True)
class Exposure:
    audience: Audience
    subject: str
    detail: str
    exposed: bool  # reachable beyond loopback

    @property
    def warn(self) -> bool:
        return self.exposed and self.audience in (Audience.OPERATORS, Audience.CODE)


def _is_loopback_text(bind: str) -> bool:
    return bind in ("127.0.0.1", "::1", "localhost")


def planned(values: Settings, role: Role, addresses: Mapping[str, str] | None) -> list[Exposure]:
    """What this node will listen on, before it runs (ports Ray picks itself not included)."""
    found = []
    for port in known_ports(values, role):
        if not port.planned_bind:
            continue
        where = interfaces_text(port.planned_bind, addresses)
        found.append(
            Exposure(
                port.audience,
                f"will listen: {port.label}",
                f"{port.what} on {where}; {ADVICE[port.audience]}",
                not _is_loopback_text(port.planned_bind),
            )
        )
    return found


def observed(
    values: Settings,
    role: Role,
    sockets: Sequence[Listener],
    addresses: Mapping[str, str] | None,
) -> list[Exposure]:
    """What this node listens on now: each known port with its binds and owners, then Ray's
    other ports in one line."""
    ports = known_ports(values, role)
    by_port: dict[Port | None, list[Listener]] = {}
    for sock in sorted(sockets, key=lambda s: (s.port, s.address)):
        port = next((p for p in ports if p.holds(sock.port)), None)
        by_port.setdefault(port, []).append(sock)
    found = []
    for port, group in by_port.items():
        binds = sorted({interfaces_text(s.address, addresses) for s in group})
        owners = sorted({s.owner.split("(")[0] for s in group})
        exposed = not all(s.loopback for s in group)
        if port is None:
            # Wildcard binds are the rule for these; say where the others listen.
            shown = ", ".join(
                sorted(
                    {
                        f"{s.port} {s.owner.split('(')[0]}"
                        + ("" if s.everywhere else f" on {s.address}")
                        for s in group
                    }
                )
            )
            found.append(
                Exposure(
                    Audience.CLUSTER,
                    f"listening: {len(group)} other port(s), chosen by Ray",
                    f"{shown}; {ADVICE[Audience.CLUSTER]} (fix them with the RSH_*_PORT "
                    "settings to write a firewall)",
                    exposed,
                )
            )
            continue
        numbers = sorted({s.port for s in group})
        ports_text = ", ".join(map(str, numbers[:6])) + (" ..." if len(numbers) > 6 else "")
        subject = f"listening: {port.label}"
        detail = (
            f"{port.what} on {'; '.join(binds)} (port {ports_text}, {', '.join(owners)}); "
            f"{ADVICE[port.audience]}"
        )
        found.append(Exposure(port.audience, subject, detail, exposed))
    return found
