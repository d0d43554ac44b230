"""Group "Direct ingress": the port ranges replicas listen on.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import Port
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class IngressSettings:
    direct_ingress_min_http_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
            Group.INGRESS,
            Port(),
            "Lowest HTTP port a replica listens on (HAProxy on every node connects to it).",
            default=30000,
            ray=True,
        )
    )
    direct_ingress_max_http_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT",
            Group.INGRESS,
            Port(),
            "Highest replica HTTP port.",
            default=31000,
            ray=True,
        )
    )
    direct_ingress_min_grpc_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT",
            Group.INGRESS,
            Port(),
            "Lowest gRPC port a replica listens on.",
            default=40000,
            ray=True,
        )
    )
    direct_ingress_max_grpc_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT",
            Group.INGRESS,
            Port(),
            "Highest replica gRPC port.",
            default=41000,
            ray=True,
        )
    )
