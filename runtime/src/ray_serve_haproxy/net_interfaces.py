"""The IP addresses of this host's interfaces (the container's, or the machine's with
`--network host`), read from the kernel without any tool in the image.

IPv4: the SIOCGIFCONF ioctl (every address, aliases included, with its interface label).
IPv6: /proc/net/if_inet6.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

SIOCGIFCONF = 0x8912
# struct ifreq on 64-bit Linux (amd64, arm64): a 16-byte name and a 24-byte union.
IFREQ_SIZE = 40
IFNAMSIZ = 16
MAX_INTERFACES = 256
IF_INET6 = Path("/proc/net/if_inet6")


def parse_ifconf(data: bytes) -> dict[str, str]:
    """address -> interface from the ifreq array SIOCGIFCONF fills in."""
    found: dict[str, str] = {}
    for offset in range(0, len(data) - IFREQ_SIZE + 1, IFREQ_SIZE):
        record = data[offset : offset + IFREQ_SIZE]
        name = record[:IFNAMSIZ].split(b"\0", 1)[0].decode(errors="replace")
        # sockaddr_in: family (2 bytes), port (2 bytes), address (4 bytes).
        family = struct.unpack_from("H", record, IFNAMSIZ)[0]
        if family == socket.AF_INET:
            found[socket.inet_ntoa(record[IFNAMSIZ + 4 : IFNAMSIZ + 8])] = name
    return found


def ipv4_addresses() -> dict[str, str]:
    size = IFREQ_SIZE * MAX_INTERFACES
    buffer = array.array("B", bytes(size))
    address = buffer.buffer_info()[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        packed = fcntl.ioctl(sock.fileno(), SIOCGIFCONF, struct.pack("iL", size, address))
    used = struct.unpack("iL", packed)[0]
    return parse_ifconf(buffer.tobytes()[:used])


def parse_if_inet6(text: str) -> dict[str, str]:
    """address -> interface from /proc/net/if_inet6 (hex address, index, prefix, scope,
    flags, name)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 6 and len(fields[0]) == 32:
            found[str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))] = fields[5]
    return found


def local_addresses() -> dict[str, str] | None:
    """Every address of this host -> its interface; None when they cannot be read."""
    try:
        found = ipv4_addresses()
    except OSError:
        return None
    with contextlib.suppress(OSError):  # no IPv6 in this network namespace
        found.update(parse_if_inet6(IF_INET6.read_text()))
    return found
