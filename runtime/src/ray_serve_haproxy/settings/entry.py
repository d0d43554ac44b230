"""Group "Entry": the settings of the `entry` role.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import Duration, EntryNode, EntryNodeList, IntRange
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class EntrySettings:
    entry_nodes: tuple[EntryNode, ...] | None = setting(
        Spec(
            "RSH_ENTRY_NODES",
            Group.ENTRY,
            EntryNodeList(),
            "Entry: the nodes whose HAProxy it balances over, `host[:port]` (port default "
            "`RSH_HTTP_PORT`; gRPC goes to `RSH_GRPC_PORT` on the same hosts). A host name is "
            "resolved by HAProxy while it runs (the nameservers of /etc/resolv.conf, no "
            "search domains: use names the nameserver answers as they are) and every address "
            "it returns becomes a server, so a compose service name follows `--scale`; an IP "
            "address is used as given. Required for `entry`.",
            unset_means="unset (required by `entry`)",
        )
    )
    entry_slots: int = setting(
        Spec(
            "RSH_ENTRY_SLOTS",
            Group.ENTRY,
            IntRange(1, 1024),
            "Entry: servers per host name of `RSH_ENTRY_NODES`, i.e. the most addresses one "
            "name can resolve to (nodes of a scaled compose service).",
            default=16,
        )
    )
    entry_check_inter: str = setting(
        Spec(
            "RSH_ENTRY_CHECK_INTER",
            Group.ENTRY,
            Duration(),
            "Entry: interval (and timeout) of its health check of each node: `/-/healthz` "
            "answers 200 and `/-/routes` lists at least one route (for gRPC, also Serve's gRPC "
            "health call on the gRPC port).",
            default="1s",
        )
    )
    entry_check_fall: int = setting(
        Spec(
            "RSH_ENTRY_CHECK_FALL",
            Group.ENTRY,
            IntRange(1, 1000),
            "Entry: failed checks before a node is taken out. A refused or timed-out "
            "connection on live traffic makes the next check decisive.",
            default=2,
        )
    )
    entry_check_rise: int = setting(
        Spec(
            "RSH_ENTRY_CHECK_RISE",
            Group.ENTRY,
            IntRange(1, 1000),
            "Entry: passed checks before a node gets traffic (again).",
            default=2,
        )
    )
    entry_connect_timeout: str = setting(
        Spec(
            "RSH_ENTRY_CONNECT_TIMEOUT",
            Group.ENTRY,
            Duration(),
            "Entry: TCP connect timeout to a node. A connection that fails or times out is "
            "retried on another node (nothing was sent yet), so a short one turns a dead "
            "node into a short delay instead of an error.",
            default="500ms",
        )
    )
