"""CPUs a container may use, from fake cgroup v2 / v1 trees, and the NBTHREAD derived from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray_serve_haproxy.cgroup_cpus import available_cpus, cgroup_cpu_limit
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.settings_loader import load_settings

pytestmark = pytest.mark.unit


def v2_tree(root: Path, limits: dict[str, str], own: str = "/") -> Path:
    """A cgroup v2 mount at root/sys with cpu.max per relative dir, and /proc/self/cgroup."""
    mount = root / "sys"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for relative, cpu_max in limits.items():
        directory = mount / relative.strip("/") if relative.strip("/") else mount
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cpu.max").write_text(cpu_max + "\n")
    (root / "self-cgroup").write_text(f"0::{own}\n")
    return mount


def v1_tree(root: Path, quota: int, period: int = 100000, name: str = "cpu,cpuacct") -> Path:
    mount = root / "sys"
    cpu = mount / name
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (cpu / "cpu.cfs_period_us").write_text(f"{period}\n")
    (mount / "memory").mkdir()
    (root / "self-cgroup").write_text(f"4:{name}:/docker/abc\n3:memory:/docker/abc\n")
    return mount


def cpus(root: Path, mount: Path, affinity: int = 8) -> int:
    return available_cpus(mount, root / "self-cgroup", affinity=affinity)


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1), ("max 100000", 8)],
)
def test_v2_quota_rounds_up(tmp_path: Path, cpu_max: str, expected: int) -> None:
    mount = v2_tree(tmp_path, {"/": cpu_max})
    assert cpus(tmp_path, mount) == expected


def test_v2_without_cgroup_namespace_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    mount = v2_tree(
        tmp_path,
        {"/": "max 100000", "/kubepods": "100000 100000", "/kubepods/pod1/ctr": "300000 100000"},
        own="/kubepods/pod1/ctr",
    )
    assert cgroup_cpu_limit(mount, tmp_path / "self-cgroup") == 1.0
    assert cpus(tmp_path, mount) == 1


def test_v2_affinity_below_quota_wins(tmp_path: Path) -> None:
    mount = v2_tree(tmp_path, {"/": "400000 100000"})
    assert cpus(tmp_path, mount, affinity=2) == 2


@pytest.mark.parametrize("name", ["cpu,cpuacct", "cpu"])
def test_v1_cfs_quota(tmp_path: Path, name: str) -> None:
    mount = v1_tree(tmp_path, quota=250000, name=name)
    assert cpus(tmp_path, mount) == 3


def test_v1_unlimited_quota_leaves_affinity(tmp_path: Path) -> None:
    mount = v1_tree(tmp_path, quota=-1)
    assert cgroup_cpu_limit(mount, tmp_path / "self-cgroup") is None
    assert cpus(tmp_path, mount, affinity=6) == 6


def test_no_cgroup_at_all(tmp_path: Path) -> None:
    assert cpus(tmp_path, tmp_path / "nothing", affinity=3) == 3


def test_garbage_is_ignored(tmp_path: Path) -> None:
    mount = v2_tree(tmp_path, {"/": "lots of cpus"})
    assert cpus(tmp_path, mount, affinity=5) == 5


@pytest.mark.parametrize(("cpu_max", "nbthread"), [("100000 100000", 1), ("1600000 100000", 4)])
def test_nbthread_follows_the_cgroup_quota(
    tmp_path: Path, private_paths: dict[str, str], cpu_max: str, nbthread: int
) -> None:
    mount = v2_tree(tmp_path, {"/": cpu_max})
    facts = HostFacts(cpus=cpus(tmp_path, mount, affinity=32), shm_bytes=None, haproxy_binary=None)
    effective = load_settings(private_paths, facts=facts)
    assert effective.values.nbthread == nbthread
    assert effective.sources["RAY_SERVE_HAPROXY_NBTHREAD"] == "derived"
