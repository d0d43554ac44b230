"""Reading CPU time from cgroups and /proc (fake trees laid out like the host's), naming
processes (command lines recorded in the benchmark's head and worker containers), windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cpu_accounting import (
    NS_PER_TICK,
    CpuAccountingError,
    CpuMeter,
    container_cgroup,
    parse_proc_cgroup,
    parse_proc_stat,
    per_request_us,
    process_label,
    window,
)

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"

CID = "48f53f84c0516cbcefe5f1fca889af71dc443bc3165716d17f06b95970c9c336"
# /proc/<pid>/cgroup of a container's init process on this project's hosts (cgroup v1 with
# the v2 hierarchy mounted beside it), as recorded.
V1_CGROUP = "\n".join(
    f"{i}:{c}:/docker/{CID}"
    for i, c in [
        (9, "name=systemd"),
        (4, "memory"),
        (2, "cpuacct"),
        (1, "cpu"),
        (0, ""),
    ]
)
V2_CGROUP = f"0::/system.slice/docker-{CID}.scope\n"


def stat_line(pid: int, comm: str, utime: int, stime: int) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return f"{pid} ({comm}) S 1 1 1 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 4 0\n"


def make_proc(
    root: Path, pid: int, comm: str, argv: list[str], utime: int, stime: int = 0, cgroup: str = ""
) -> None:
    d = root / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "stat").write_text(stat_line(pid, comm, utime, stime))
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
    if cgroup:
        (d / "cgroup").write_text(cgroup)


def test_proc_cgroup_lines() -> None:
    paths = parse_proc_cgroup(V1_CGROUP)
    assert paths["cpuacct"] == paths["cpu"] == paths[""] == f"/docker/{CID}"
    assert parse_proc_cgroup(V2_CGROUP) == {"": f"/system.slice/docker-{CID}.scope"}


def test_proc_stat_with_a_command_name_holding_spaces_and_parens() -> None:
    assert parse_proc_stat(stat_line(7, "ray::A (b) c", 250, 50)) == ("ray::A (b) c", 300)


def test_cgroup_v1_cpuacct(tmp_path: Path) -> None:
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    make_proc(proc, 3529, "tini", ["/usr/bin/tini"], 1, cgroup=V1_CGROUP)
    base = cg / "cpuacct" / "docker" / CID
    base.mkdir(parents=True)
    (base / "cpuacct.usage").write_text("41161082510\n")
    (base / "cgroup.procs").write_text("3529\n3600\n")
    group = container_cgroup("head", 3529, proc=proc, cgroup_root=cg)
    assert group.usage_ns() == 41161082510
    assert group.pids() == [3529, 3600]


def test_cgroup_v2_cpu_stat(tmp_path: Path) -> None:
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    make_proc(proc, 10, "tini", ["/usr/bin/tini"], 1, cgroup=V2_CGROUP)
    base = cg / "system.slice" / f"docker-{CID}.scope"
    base.mkdir(parents=True)
    (base / "cpu.stat").write_text("usage_usec 42282076\nuser_usec 28576902\nsystem_usec 1\n")
    (base / "cgroup.procs").write_text("10\n")
    assert container_cgroup("w", 10, proc=proc, cgroup_root=cg).usage_ns() == 42282076000


def test_no_readable_counter_names_what_was_tried(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    make_proc(proc, 5, "tini", ["/usr/bin/tini"], 1, cgroup=V1_CGROUP)
    with pytest.raises(CpuAccountingError, match=r"cpuacct\.usage"):
        container_cgroup("head", 5, proc=proc, cgroup_root=tmp_path / "cgroup")
    with pytest.raises(CpuAccountingError, match="cannot read /proc/6/cgroup"):
        container_cgroup("head", 6, proc=proc, cgroup_root=tmp_path / "cgroup")


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        (
            "procs_head.json",
            [
                "tini", "supervisord", "ray-serve-haproxy watchdog", "ray-serve-haproxy syslog",
                "ray-serve-haproxy run-ray", "ray start", "gcs_server", "monitor",
                "ray.util.client.server", *["dashboard"] * 12, "log_monitor", "raylet",
                "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::ServeController",
                "ray::ProxyActor", "ray::HAProxyManager", "haproxy",
            ],
        ),
        (
            "procs_worker.json",
            [
                "tini", "supervisord", "ray-serve-haproxy watchdog", "ray-serve-haproxy syslog",
                "ray-serve-haproxy run-ray", "ray start", "log_monitor", "raylet",
                "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::ServeReplica:bench:Bench",
                "ray::ServeReplica:bench-grpc:BenchGrpc", "ray::HAProxyManager", "haproxy",
            ],
        ),
    ],
)  # fmt: skip
def test_process_labels_of_recorded_containers(recorded: str, expected: list[str]) -> None:
    procs = json.loads((DATA / recorded).read_text())
    assert [process_label(p["comm"], p["argv"]) for p in procs] == expected


def test_process_labels_of_a_few_more() -> None:
    assert process_label("socat", ["socat", "-u", "UDP4-RECV:514"]) == "socat"
    # Ray renames an actor's process while a method runs.
    assert process_label("ray::ServeContr", ["ray::ServeController.listen_for_change"]) == (
        "ray::ServeController"
    )
    assert process_label("kworker", []) == "kworker"


def test_a_window_splits_the_entry_container_by_process(tmp_path: Path) -> None:
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    make_proc(proc, 100, "tini", ["/usr/bin/tini", "--", "ray-serve-haproxy", "head"], 0,
              cgroup=V1_CGROUP)  # fmt: skip
    make_proc(proc, 101, "haproxy", ["/usr/local/bin/haproxy", "-db", "-f", "x.cfg"], 50)
    make_proc(proc, 102, "ray::HAProxyMan", ["ray::HAProxyManager"], 10, 10)
    make_proc(proc, 900, "dockerd", ["/usr/bin/dockerd"], 1000)
    make_proc(proc, 901, "containerd-shim", ["/usr/bin/containerd-shim-runc-v2"], 500)
    base = cg / "cpuacct" / "docker" / CID
    base.mkdir(parents=True)
    (base / "cgroup.procs").write_text("100\n101\n102\n")
    (base / "cpuacct.usage").write_text(str(1_000_000_000))
    # /proc/stat: user nice system idle iowait irq softirq steal, in ticks, all CPUs.
    (proc / "stat").write_text("cpu  1000 0 500 8000 100 0 0 0 0 0\ncpu0 1 2 3\n")
    meter = CpuMeter({"head": container_cgroup("head", 100, proc=proc, cgroup_root=cg)},
                     ["head"], proc=proc)  # fmt: skip
    assert meter.relays == {900: "dockerd", 901: "containerd-shim"}
    before = meter.snapshot()
    # In the window: haproxy +30 ticks, the manager +5+5, a new haproxy (reload) 4 ticks,
    # dockerd +20, the shim +10; the container used 600 ms in all.
    make_proc(proc, 101, "haproxy", ["/usr/local/bin/haproxy", "-db", "-f", "x.cfg"], 80)
    make_proc(proc, 102, "ray::HAProxyMan", ["ray::HAProxyManager"], 15, 15)
    make_proc(proc, 103, "haproxy", ["/usr/local/bin/haproxy", "-db", "-sf", "101"], 4)
    (base / "cgroup.procs").write_text("100\n101\n102\n103\n")
    (base / "cpuacct.usage").write_text(str(1_600_000_000))
    make_proc(proc, 900, "dockerd", ["/usr/bin/dockerd"], 1020)
    make_proc(proc, 901, "containerd-shim", ["/usr/bin/containerd-shim-runc-v2"], 510)
    # 2 CPUs for one second: 200 ticks, 100 of them busy.
    (proc / "stat").write_text("cpu  1080 0 520 8100 100 0 0 0 0 0\n")
    after = meter.snapshot()
    w = window(before, after)
    tick_ms = NS_PER_TICK / 1e6
    assert w["containers_ms"] == {"head": 600.0}
    assert w["host_ms"] == {
        "dockerd": 20 * tick_ms,
        "containerd": 0.0,
        "containerd-shim": 10 * tick_ms,
    }
    procs = w["processes_ms"]["head"]
    assert procs["haproxy"] == 34 * tick_ms
    assert procs["ray::HAProxyManager"] == 10 * tick_ms
    assert procs["unattributed"] == pytest.approx(600 - 44 * tick_ms)
    assert list(procs.values()) == sorted(procs.values(), reverse=True)  # busiest first
    assert w["machine_busy_pct"] == 50.0
    busy_ms = 100 * tick_ms
    total_ms = 200 * tick_ms
    others = 100 * (busy_ms - 600 - 30 * tick_ms) / total_ms
    assert w["others_pct"] == round(others, 1)
    assert per_request_us({"head": 600.0}, requests=1000) == {"head": 600.0}
    assert per_request_us({"head": 600.0}, requests=0) == {}
