"""The TCP ports this network namespace listens on, and which of our processes holds each.

Read from /proc/net/tcp, /proc/net/tcp6 and /proc/<pid>/fd (no `ss` or `netstat` in the
image). Inside a container that is the container's own network; with `--network host` it is
the machine's, i.e. exactly what other machines can reach.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from .processes import PROC

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    address: str  # "0.0.0.0", "::", "127.0.0.1", ...
    port: int
    inode: str
    owner: str = "?"  # the process holding the socket, when it is ours

    @property
    def everywhere(self) -> bool:
        return ipaddress.ip_address(self.address).is_unspecified

    @property
    def loopback(self) -> bool:
        address = ipaddress.ip_address(self.address)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return address.is_loopback


def _address(hex_text: str) -> str:
    """An address as /proc/net/tcp{,6} prints it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_text)
    words = b"".join(
        struct.pack(">I", struct.unpack("<I", raw[i : i + 4])[0]) for i in range(0, len(raw), 4)
    )
    if len(words) == 4:
        return socket.inet_ntop(socket.AF_INET, words)
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def parse_proc_net_tcp(text: str) -> list[Listener]:
    """Listening sockets of one /proc/net/tcp or tcp6 file."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        address, _, port = fields[1].partition(":")
        found.append(Listener(_address(address), int(port, 16), fields[9]))
    return found


def socket_owners(proc_root: Path = PROC) -> dict[str, str]:
    """Socket inode -> "comm(pid)" for every process whose descriptors we may read."""
    owners: dict[str, str] = {}
    for entry in proc_root.iterdir() if proc_root.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            descriptors = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                target = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners.setdefault(target[8:-1], f"{comm}({entry.name})")
    return owners


def listening(proc_root: Path = PROC) -> list[Listener]:
    """Every listening TCP socket here, IPv4 and IPv6, with its owner where known."""
    found: list[Listener] = []
    for name in ("tcp", "tcp6"):
        try:
            found += parse_proc_net_tcp((proc_root / "net" / name).read_text())
        except OSError:
            continue
    owners = socket_owners(proc_root)
    return [
        Listener(item.address, item.port, item.inode, owners.get(item.inode, "?")) for item in found
    ]
