"""The HAProxy a node runs, seen from outside: its processes, its config, its admin socket."""

from __future__ import annotations

import re
from typing import Any

from .apps import REPLICAS
from .shell import BenchError, dexec, run


def haproxy_processes(container: str) -> list[str]:
    out = dexec(container, ["ps", "-eo", "args"], check=False)
    return [ln.strip() for ln in out.splitlines() if re.match(r"\S*haproxy\s", ln.strip() + " ")]


def haproxy_cfg(container: str) -> tuple[str, str]:
    """(path, text) of the HAProxy config the running haproxy was started with."""
    for args in haproxy_processes(container):
        m = re.search(r"\s-f\s+(\S+)", args)
        if m:
            return m.group(1), dexec(container, ["cat", m.group(1)])
    raise BenchError("no running haproxy with -f <config> in the head container")


def parse_cfg(text: str, backend: str) -> dict[str, Any]:
    """A backend's servers (not the backups), the nbthread and the admin socket of a config."""
    servers: list[dict[str, str]] = []
    nbthread = None
    socket = None
    in_backend = False
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not line[0].isspace():
            in_backend = s == f"backend {backend}"
            continue
        words = s.split()
        if words[0] == "nbthread":
            nbthread = int(words[1])
        elif words[:2] == ["stats", "socket"]:
            socket = words[2]
        elif in_backend and words[0] == "server" and "backup" not in words:
            servers.append({"name": words[1], "address": words[2]})
    return {"servers": servers, "nbthread": nbthread, "socket": socket}


def backend_servers(text: str, backend: str) -> tuple[list[str], bool]:
    """(addresses of the backend's servers, whether they are one per replica on distinct hosts)."""
    addrs = [s["address"] for s in parse_cfg(text, backend)["servers"]]
    hosts = {a.rsplit(":", 1)[0] for a in addrs}
    return addrs, len(addrs) == REPLICAS and len(hosts) == REPLICAS


def haproxy_show(container: str, socket: str, command: str) -> str:
    cmd = ["docker", "exec", "-i", container, "socat", "-t", "2", "stdio", f"UNIX-CONNECT:{socket}"]
    return run(cmd, input_text=command + "\n", check=False, timeout=20).stdout
