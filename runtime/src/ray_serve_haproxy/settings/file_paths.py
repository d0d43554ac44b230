"""Group "File paths": where Ray writes HAProxy's config, sockets and state.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import AbsPath
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class FilePathSettings:
    config_file_loc: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
            Group.PATHS,
            AbsPath(),
            "Generated HAProxy config; Ray writes it to `<dir>/<node id>/<name>`. The runtime "
            "creates the directory with mode 0700.",
            default="/tmp/haproxy-serve/haproxy.cfg",
            ray=True,
        )
    )
    socket_path: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SOCKET_PATH",
            Group.PATHS,
            AbsPath(),
            "HAProxy admin socket; Ray creates it (mode 666) as `<dir>/<node id>/<name>`, so "
            "the runtime creates the directory with mode 0700 to keep it private. The "
            "per-node path must fit HAProxy's 97-character limit for UNIX sockets.",
            default="/tmp/haproxy-serve/admin.sock",
            ray=True,
        )
    )
    server_state_base: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
            Group.PATHS,
            AbsPath(),
            "Base directory for server state files (created with mode 0700).",
            default="/tmp/haproxy-serve",
            ray=True,
        )
    )
    server_state_file: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE",
            Group.PATHS,
            AbsPath(),
            "Server state persistence file, kept across HAProxy reloads.",
            default="/tmp/haproxy-serve/server-state",
            ray=True,
        )
    )
    metrics_socket_path: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
            Group.PATHS,
            AbsPath(),
            "UNIX datagram socket where HAProxy logs per-request metrics for Serve; Ray "
            "creates it (mode 666) as `<dir>/<node id>/<name>`, so the runtime makes the "
            "directory 0700 like the admin socket's.",
            default="/tmp/haproxy-serve/metrics.sock",
            ray=True,
        )
    )
