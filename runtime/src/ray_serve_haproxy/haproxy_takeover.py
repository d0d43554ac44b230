"""A node's HAProxy outliving a crashed HAProxyManager, and the new manager's taking over.

Ray 2.60's raylet kills a dead worker's whole process group. HAProxy, started by the
HAProxyManager actor, was in that group: a kill -9 of the manager took HAProxy down with it and
cut every request inside it (a gRPC call is never replayed by the entry: its body may have
reached a replica). The launcher (haproxy_launcher.py) therefore runs HAProxy in its own process
group: it keeps serving its last routes while Serve starts a new manager (about 25 s), and the
new manager's first HAProxy takes over from it the way Ray's own reloads do: the listening
sockets through the old process's admin socket (`-x`, `expose-fd listeners` in Ray's config),
then a soft stop (`-sf`) in which the old one finishes what it has in flight.

One gap remains: a new manager's first configuration has no routes yet (its health check
answers "Route table is not populated yet.", every path 404) until the controller sends them a
moment later. Taking over with that would answer 404 meanwhile, so when taking over, the
launcher starts the last configuration this node served with routes (kept beside Ray's as
`<config>.serving`); the manager's next reload brings its own.

Imports only built-in modules: this runs on every HAProxy start (see haproxy_launcher.py).
"""

from __future__ import annotations

import os
from itertools import pairwise  # built in: costs nothing to import

# What Ray 2.60's HAProxy health check answers while a configuration cannot serve
# (serve/_private/constants.py NO_ROUTES_MESSAGE, NO_REPLICAS_MESSAGE).
NOT_READY_MESSAGES = ("Route table is not populated yet.", "No replicas are available yet.")
SERVING_SUFFIX = ".serving"
EXPOSE_FD = "expose-fd listeners"


def serves_routes(config_text: str) -> bool:
    """Whether Ray rendered this configuration with routes its health check vouches for."""
    return not any(f'string "{message}"' in config_text for message in NOT_READY_MESSAGES)


def saved_path(config: str) -> str:
    return config + SERVING_SUFFIX


def admin_socket(config_text: str) -> str | None:
    """The path of the admin socket that hands its listening sockets over (`-x`), if any."""
    for line in config_text.split("\n"):
        words = line.split()
        if words[:2] == ["stats", "socket"] and len(words) > 2 and EXPOSE_FD in line:
            return words[2]
    return None


def socket_answers(path: str, timeout_s: float = 1.0) -> bool:
    """Whether an HAProxy accepts on the admin socket at `path`: HAProxy exits when `-x` cannot
    fetch the sockets, so a silent one is left out (the new HAProxy then binds itself, after
    asking the old ones to release their ports: HAProxy's reload without `-x`)."""
    import socket  # only when taking over: not on every start

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
        return True
    except OSError:
        return False


def _ppid(proc: str) -> int | None:
    try:
        with open(f"{proc}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 2 or fields[0] == "Z":
        return None  # gone, or a zombie: it serves nothing
    return int(fields[1])


def leftover_haproxy(config: str, binary: str, parent: int, proc_root: str = "/proc") -> list[int]:
    """Pids of HAProxy processes running `config` that `parent` (the manager starting a new one)
    did not start: left by a manager that died. Ray passes its own old processes in `-sf`."""
    target = os.path.realpath(binary)
    found = []
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        proc = f"{proc_root}/{entry}"
        try:
            # readlink first: cheap, and fails for other users' processes.
            if os.path.realpath(os.readlink(f"{proc}/exe")) != target:
                continue
            with open(f"{proc}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if ("-f", config) not in pairwise(argv):
            continue
        ppid = _ppid(proc)
        if ppid is not None and ppid != parent:
            found.append(int(entry))
    return sorted(found)


def takeover_args(args: list[str], pids: list[int], socket: str | None) -> list[str]:
    """HAProxy's arguments with `pids` to soft-stop once started (`-sf`), and their listening
    sockets taken over through `socket` (`-x`) unless Ray already asked for that."""
    out = list(args)
    extra = [str(pid) for pid in pids]
    if "-sf" in out:
        # After Ray's own pids: HAProxy reads pids after -sf up to the next option.
        end = out.index("-sf") + 1
        while end < len(out) and out[end].isdigit():
            end += 1
        out[end:end] = [p for p in extra if p not in out[out.index("-sf") + 1 : end]]
    elif extra:
        out += ["-sf", *extra]
    if socket is not None and extra and "-x" not in out:
        out += ["-x", socket]
    return out
