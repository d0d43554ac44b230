"""Rules about paths: sockets short enough, directories this user can create, files to read."""

from __future__ import annotations

import os
from pathlib import Path

from .context import RuleContext

# Ray names per-node HAProxy files <dir>/<node id>/<name>; a node id is 28 bytes in hex.
NODE_ID_HEX_LEN = 56
# HAProxy binds a UNIX socket through a temporary "<path>.<pid>.tmp" and refuses paths longer
# than this ("name too long for UNIX socket (limit usually 97)").
HAPROXY_UNIX_SOCKET_MAX = 97
UNIX_SOCKET_MAX = 107  # sizeof(sun_path) - 1


def per_node_path(path: str, node_id: str = "0" * NODE_ID_HEX_LEN) -> str:
    """Where Ray 2.60's HAProxyManager puts `path` on a node."""
    directory, name = os.path.split(path)
    return os.path.join(directory, node_id, name)


def dir_problem(directory: str) -> str | None:
    """Why `directory` cannot be created and written by this user, or None."""
    path = Path(directory)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else f"cannot be created: {probe} is not writable"
        return f"directory {path} {what} by uid {os.getuid()}"
    return None


def socket_paths_fit(ctx: RuleContext) -> None:
    """The per-node admin and metrics socket paths fit the UNIX socket limits."""
    for name, limit, whose in (
        ("socket_path", HAPROXY_UNIX_SOCKET_MAX, "HAProxy's limit for UNIX sockets it binds"),
        ("metrics_socket_path", UNIX_SOCKET_MAX, "the kernel's limit for UNIX socket paths"),
    ):
        if not ctx.valid(name):
            continue
        longest = per_node_path(ctx.values[name])
        if len(longest) > limit:
            ctx.error(
                name,
                f"the per-node socket path <dir>/<{NODE_ID_HEX_LEN}-char node id>/<name> "
                f"is {len(longest)} characters; allowed: at most {limit} ({whose}), "
                "i.e. a shorter directory or name",
            )


def directories_creatable(ctx: RuleContext) -> None:
    """This user can create the directories of HAProxy's files and the runtime's state."""
    for name, is_file in (
        ("config_file_loc", True),
        ("socket_path", True),
        ("metrics_socket_path", True),
        ("server_state_file", True),
        ("server_state_base", False),
        ("state_dir", False),
    ):
        if not ctx.valid(name):
            continue
        directory = os.path.dirname(ctx.values[name]) if is_file else ctx.values[name]
        problem = dir_problem(directory)
        if problem:
            ctx.error(name, f"{problem}; allowed: a path in a directory this user can create")


def serve_config_readable(ctx: RuleContext) -> None:
    """RSH_SERVE_CONFIG names a readable file."""
    if not ctx.valid("serve_config") or ctx.values["serve_config"] is None:
        return
    path = ctx.values["serve_config"]
    if not (os.path.isfile(path) and os.access(path, os.R_OK)):
        ctx.error("serve_config", "no readable file there; allowed: path of a readable file")
