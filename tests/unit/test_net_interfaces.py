"""This host's addresses, as RSH_NODE_IP is checked against them."""

from __future__ import annotations

import socket
import struct

import pytest
from ray_serve_haproxy.net_interfaces import (
    IFREQ_SIZE,
    local_addresses,
    parse_if_inet6,
    parse_ifconf,
)

pytestmark = pytest.mark.unit


def ifreq(name: str, address: str, family: int = socket.AF_INET) -> bytes:
    sockaddr = struct.pack("H", family) + b"\0\0" + socket.inet_aton(address)
    return (name.encode().ljust(16, b"\0") + sockaddr).ljust(IFREQ_SIZE, b"\0")


def test_parse_ifconf_reads_every_ipv4_address_with_its_label() -> None:
    data = ifreq("lo", "127.0.0.1") + ifreq("eth0", "10.0.0.7") + ifreq("eth0:1", "10.0.1.7")
    assert parse_ifconf(data) == {"127.0.0.1": "lo", "10.0.0.7": "eth0", "10.0.1.7": "eth0:1"}


def test_parse_ifconf_skips_other_families() -> None:
    assert parse_ifconf(ifreq("x", "1.2.3.4", family=socket.AF_INET6)) == {}


def test_parse_if_inet6() -> None:
    text = (
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fd000000000000000000000000000002 02 40 00 80     eth0\n"
    )
    assert parse_if_inet6(text) == {"::1": "lo", "fd00::2": "eth0"}


def test_this_host_has_loopback() -> None:
    found = local_addresses()
    assert found is not None and found.get("127.0.0.1") == "lo", found
