"""The paths a request can take to the benchmark's app, and the URL each one is measured at.

A path is a name, where the load is sent on the compose network, and the compose service
whose containers take the client's traffic (the "entry" node, whose CPU per request is the
score). Adding a path is one PathSpec here and its name in a phase (phases.py).

`entry` and `grpc_entry` are the high-availability entry tier (compose service `entry`, an
HAProxy in front of every node's HAProxy): measured in the haproxy phase when compose.yaml has
that service (phases.ENTRY_SERVICE). Their CPU per request is the entry container's plus the
host's relays; the node-tier HAProxy they forward to is the `haproxy` path's cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .apps import GRPC_METHOD, GRPC_PORT, HTTP_PORT, ROUTE


@dataclass(frozen=True)
class PathSpec:
    name: str
    label: str
    entry: str  # compose service of the entry node(s)
    host: str | None  # where the load goes on the compose network; None: the replicas' ports
    grpc: bool = False


PATHS = {
    p.name: p
    for p in (
        PathSpec("haproxy", "HAProxy mode (:8000)", entry="head", host="head"),
        PathSpec("python_proxy", "Python proxy (:8000)", entry="head", host="head"),
        PathSpec("direct", "Direct to replicas (30000+)", entry="worker", host=None),
        PathSpec("grpc_haproxy", "gRPC: HAProxy mode (:9000)", "head", "head", grpc=True),
        PathSpec("grpc_python_proxy", "gRPC: Python proxy (:9000)", "head", "head", grpc=True),
        PathSpec("grpc_direct", "gRPC: direct to replicas (40000+)", "worker", None, grpc=True),
        PathSpec("entry", "Entry tier (:8000) over the nodes' HAProxy", "entry", "entry"),
        PathSpec("grpc_entry", "gRPC: entry tier (:9000)", "entry", "entry", grpc=True),
    )
}
GRPC_PATHS = [name for name, p in PATHS.items() if p.grpc]


@dataclass
class Target:
    """One path made concrete on a running cluster: what wrk or h2load is pointed at."""

    path: str
    url: str
    spread: list[str] = field(default_factory=list)  # host:port per replica (direct paths)
    grpc: bool = False  # h2load with the gRPC request instead of wrk


def target_for(spec: PathSpec, phase_info: dict[str, Any]) -> Target:
    """The target of `spec` on the cluster a phase brought up (replica addresses from its
    HAProxy config, found while waiting for it to be ready)."""
    suffix = GRPC_METHOD if spec.grpc else ROUTE
    if spec.host is None:
        reps = list(phase_info["grpc_replicas" if spec.grpc else "replicas"])
        return Target(spec.name, f"http://{reps[0]}{suffix}", spread=reps, grpc=spec.grpc)
    port = GRPC_PORT if spec.grpc else HTTP_PORT
    return Target(spec.name, f"http://{spec.host}:{port}{suffix}", grpc=spec.grpc)
