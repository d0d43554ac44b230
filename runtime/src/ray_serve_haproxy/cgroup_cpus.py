"""How many CPUs this container may use: CPU affinity and the cgroup CPU quota.

`os.cpu_count()` reports the host's CPUs; a container limited with `--cpus` or a Kubernetes
CPU limit gets a CFS quota instead, visible only in its cgroup (v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`). The root paths are parameters so tests can hand in a
fake tree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 mounts the cpu controller under one of these names.
V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ancestors(root: Path, relative: str) -> Iterator[Path]:
    """root/relative, then each parent up to root itself."""
    parts = [p for p in relative.strip("/").split("/") if p and p not in (".", "..")]
    for depth in range(len(parts), -1, -1):
        yield root.joinpath(*parts[:depth])


def _own_cgroup_paths(proc_self_cgroup: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu path) of this process from /proc/self/cgroup."""
    v2: str | None = None
    v1: str | None = None
    for line in (_read(proc_self_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _v2_limit(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    try:
        q, p = int(quota), int(period or "100000")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _v1_limit(directory: Path) -> float | None:
    quota = _read(directory / "cpu.cfs_quota_us")
    period = _read(directory / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP
) -> float | None:
    """The tightest CPU quota (in CPUs) over this process's cgroup and its ancestors, if any.

    With a cgroup namespace (Docker's default on cgroup v2) the container's own cgroup is the
    mount's root; without one it sits below, at the path /proc/self/cgroup names.
    """
    v2_path, v1_path = _own_cgroup_paths(proc_self_cgroup)
    limits: list[float] = []
    if (cgroup_root / "cgroup.controllers").exists():  # v2 unified hierarchy
        for directory in _ancestors(cgroup_root, v2_path or "/"):
            limit = _v2_limit(directory)
            if limit is not None:
                limits.append(limit)
    else:
        for name in V1_CPU_DIRS:
            base = cgroup_root / name
            if not base.is_dir():
                continue
            for directory in _ancestors(base, v1_path or "/"):
                limit = _v1_limit(directory)
                if limit is not None:
                    limits.append(limit)
            break
    return min(limits) if limits else None


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_cpus(
    cgroup_root: Path = CGROUP_ROOT,
    proc_self_cgroup: Path = PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> int:
    """CPUs this process may use: affinity, capped by the cgroup quota rounded up; at least 1."""
    cpus = affinity if affinity is not None else affinity_cpus()
    limit = cgroup_cpu_limit(cgroup_root, proc_self_cgroup)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)
