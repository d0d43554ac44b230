"""Group "Health checks": HAProxy's checks of the replicas on its node.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import Duration, IntRange
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class HealthCheckSettings:
    health_check_fall: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL",
            Group.HEALTH,
            IntRange(1, 1000),
            "Consecutive failures before marking a backend server DOWN.",
            default=2,
            ray=True,
        )
    )
    health_check_rise: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE",
            Group.HEALTH,
            IntRange(1, 1000),
            "Consecutive successes before marking a backend server UP.",
            default=2,
            ray=True,
        )
    )
    health_check_inter: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER",
            Group.HEALTH,
            Duration(),
            "Interval between health checks (also each check's timeout).",
            default="5s",
            ray=True,
        )
    )
    health_check_fastinter: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER",
            Group.HEALTH,
            Duration(),
            "Interval during transitions (UP→DOWN or DOWN→UP).",
            default="250ms",
            ray=True,
        )
    )
    health_check_downinter: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER",
            Group.HEALTH,
            Duration(),
            "Interval while a server is DOWN.",
            default="250ms",
            ray=True,
        )
    )
