"""CPU time of containers and host processes over a measurement window, read on the host
(and how much the containers' logs grew in it).

What a request costs on a node is the CPU time its container's cgroup used while the load ran,
divided by the requests answered in that time. Every line a container prints is relayed by
the host's dockerd and containerd shims, whose CPU shows in no container's cgroup; they are
read from /proc/<pid>/stat like the processes inside the entry container, which split the
container's total by program (haproxy, Ray's HAProxyManager actor, the log relay, raylet...).

Reads only files (cgroup v1 `cpuacct.usage`, cgroup v2 `cpu.stat`, /proc); needs the host's
/proc and /sys/fs/cgroup, i.e. runs beside the Docker engine, not in a container.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
NS_PER_TICK = 1_000_000_000 // CLOCK_TICKS

# Host processes that relay the containers' output (and run their execs): by /proc comm,
# which the kernel cuts at 15 characters (containerd-shim-runc-v2 -> containerd-shim).
HOST_RELAYS = ("dockerd", "containerd", "containerd-shim")


class CpuAccountingError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- cgroups


@dataclass(frozen=True)
class ContainerCgroup:
    """Where one container's CPU time (and its processes) are read on this host."""

    name: str
    usage_file: Path  # cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec)
    procs_file: Path  # cgroup.procs: the pids in the container, as the host sees them

    def usage_ns(self) -> int:
        text = self.usage_file.read_text()
        if self.usage_file.name == "cpu.stat":
            match = re.search(r"^usage_usec (\d+)$", text, re.M)
            if not match:
                raise CpuAccountingError(f"no usage_usec in {self.usage_file}")
            return int(match.group(1)) * 1000
        return int(text.strip())

    def pids(self) -> list[int]:
        return [int(p) for p in self.procs_file.read_text().split()]


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup -> {controller: path}; the cgroup v2 line's key is ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def container_cgroup(
    name: str, pid: int, *, proc: Path = PROC, cgroup_root: Path = CGROUP_ROOT
) -> ContainerCgroup:
    """The cgroup of the container whose init process is `pid` (docker inspect .State.Pid).

    cgroup v1 (or hybrid): the cpuacct hierarchy, mounted at <root>/cpuacct or
    <root>/cpu,cpuacct; pure cgroup v2: <root>/<path>/cpu.stat."""
    try:
        paths = parse_proc_cgroup((proc / str(pid) / "cgroup").read_text())
    except OSError as exc:
        raise CpuAccountingError(f"{name}: cannot read /proc/{pid}/cgroup: {exc}") from exc
    candidates: list[tuple[Path, Path]] = []
    if "cpuacct" in paths:
        rel = paths["cpuacct"].lstrip("/")
        for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
            base = cgroup_root / mount / rel
            candidates.append((base / "cpuacct.usage", base / "cgroup.procs"))
    if "" in paths:
        rel = paths[""].lstrip("/")
        for base in (cgroup_root / rel, cgroup_root / "unified" / rel):
            candidates.append((base / "cpu.stat", base / "cgroup.procs"))
    for usage, procs in candidates:
        if usage.is_file() and procs.is_file():
            return ContainerCgroup(name, usage, procs)
    tried = ", ".join(str(u) for u, _ in candidates) or "none (no cpuacct or v2 line)"
    raise CpuAccountingError(f"{name}: no readable cgroup CPU counter; tried {tried}")


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    label: str
    cpu_ns: int


def parse_proc_stat(text: str) -> tuple[str, int]:
    """(comm, utime + stime in clock ticks) from /proc/<pid>/stat."""
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    head, _, rest = text.rpartition(")")
    comm = head.split("(", 1)[1] if "(" in head else "?"
    fields = rest.split()
    # rest starts at field 3 (state); utime and stime are fields 14 and 15.
    return comm, int(fields[11]) + int(fields[12])


def _python_script(argv: list[str]) -> str | None:
    """What a python command line runs: `-m module`, `-c` or the script's path."""
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m" and i + 1 < len(argv):
            return "-m " + argv[i + 1]
        if arg == "-c":
            return "-c"
        if not arg.startswith("-"):
            return arg
    return None


def process_label(comm: str, argv: list[str]) -> str:
    """A short name for a process: the program, or for Ray and Python what it runs."""
    first = argv[0] if argv else comm
    if first.startswith("ray::") or comm.startswith("ray::"):
        # Ray sets the title to ray::<Actor>[.<method running now>].
        return first.split()[0].split(".", 1)[0] if first.startswith("ray::") else comm
    if comm.startswith("ray-dashboard-") or first.startswith("ray-dashboard-"):
        return "dashboard"  # the dashboard's module subprocesses
    name = Path(first.split()[0]).name if first else comm
    if re.fullmatch(r"python[\d.]*", name):
        script = _python_script(argv) or ""
        if script.startswith("-m ray_serve_haproxy"):
            sub = argv[argv.index("ray_serve_haproxy") + 1 :][:1]
            return " ".join(["ray-serve-haproxy", *sub])
        if script == "-c" and "multiprocessing" in " ".join(argv):
            return "dashboard"  # the dashboard's forkserver and resource tracker
        if script.startswith("-m "):
            return script[3:]
        base = Path(script).name
        if base == "dashboard.py":
            return "dashboard"
        if base in ("supervisord", "ray"):
            return f"{base} start" if base == "ray" else base
        return base.removesuffix(".py") or "python"
    return name


def read_process(pid: int, proc: Path = PROC) -> ProcessCpu | None:
    try:
        comm, ticks = parse_proc_stat((proc / str(pid) / "stat").read_text())
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None  # gone, or a kernel thread without a command line
    argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return ProcessCpu(pid, process_label(comm, argv), ticks * NS_PER_TICK)


def parse_proc_stat_cpu(text: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from /proc/stat's first line."""
    fields = [int(x) for x in text.split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def machine_cpu(proc: Path = PROC) -> tuple[int, int]:
    """(busy, total) CPU ns of the whole machine so far; (0, 0) where unreadable."""
    try:
        busy, total = parse_proc_stat_cpu((proc / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return (0, 0)
    return busy * NS_PER_TICK, total * NS_PER_TICK


def host_relay_pids(proc: Path = PROC) -> dict[int, str]:
    """{pid: group} of the host's dockerd, containerd and containerd shims."""
    found: dict[int, str] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in HOST_RELAYS:
            found[int(entry.name)] = comm
    return found


# ---------------------------------------------------------------------------- windows


@dataclass
class Snapshot:
    at: float  # time.monotonic()
    containers: dict[str, int]  # container name -> cgroup CPU ns
    host: dict[str, int]  # relay group -> CPU ns (sum over its processes)
    processes: dict[str, dict[int, ProcessCpu]]  # entry container -> pid -> CPU
    log_bytes: dict[str, int] = field(default_factory=dict)  # container -> its log file's size
    machine: tuple[int, int] = (0, 0)  # (busy, total) CPU ns of the whole machine, /proc/stat


@dataclass
class CpuMeter:
    """Takes snapshots of every container of interest, the host's relays, and the processes
    of the entry containers. Build once per cluster (pids of the relays are stable)."""

    cgroups: dict[str, ContainerCgroup]
    entry: list[str]  # names in cgroups whose processes are broken down
    proc: Path = PROC
    relays: dict[int, str] = field(default_factory=dict)
    # Docker's json-file logs of the containers: how many bytes a request adds to the disk.
    log_files: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.relays:
            self.relays = host_relay_pids(self.proc)

    def snapshot(self) -> Snapshot:
        at = time.monotonic()
        containers = {name: cg.usage_ns() for name, cg in self.cgroups.items()}
        host = dict.fromkeys(HOST_RELAYS, 0)
        for pid, group in self.relays.items():
            p = read_process(pid, self.proc)
            if p is not None:
                host[group] += p.cpu_ns
        processes = {}
        for name in self.entry:
            found = (read_process(pid, self.proc) for pid in self.cgroups[name].pids())
            processes[name] = {p.pid: p for p in found if p is not None}
        log_bytes = {}
        for name, path in self.log_files.items():
            try:
                log_bytes[name] = path.stat().st_size
            except OSError:
                continue
        return Snapshot(at, containers, host, processes, log_bytes, machine_cpu(self.proc))


def window(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """CPU used between two snapshots, in milliseconds: per container, per host relay group,
    and per process label in the entry containers (a process started in between counts from
    zero; what exited in between shows only in its container's total, as `unattributed`)."""
    ms = 1e6
    containers = {
        n: round((after.containers[n] - before.containers[n]) / ms, 1) for n in after.containers
    }
    host = {g: round((after.host[g] - before.host.get(g, 0)) / ms, 1) for g in after.host}
    processes: dict[str, dict[str, float]] = {}
    for name, procs in after.processes.items():
        prior = before.processes.get(name, {})
        by_label: dict[str, float] = {}
        for pid, p in procs.items():
            start = prior[pid].cpu_ns if pid in prior and prior[pid].label == p.label else 0
            by_label[p.label] = by_label.get(p.label, 0.0) + (p.cpu_ns - start) / ms
        attributed = sum(by_label.values())
        by_label["unattributed"] = containers[name] - attributed
        processes[name] = {k: round(v, 1) for k, v in sorted(by_label.items(), key=_busiest)}
    # A log rotated in between would shrink: counted as 0, never negative.
    log_bytes = {
        n: max(0, size - before.log_bytes[n])
        for n, size in after.log_bytes.items()
        if n in before.log_bytes
    }
    busy = (after.machine[0] - before.machine[0]) / ms
    total = (after.machine[1] - before.machine[1]) / ms
    return {
        "window_s": round(after.at - before.at, 3),
        "containers_ms": containers,
        "host_ms": host,
        "processes_ms": processes,
        "log_bytes": log_bytes,
        # All CPUs of the machine: how busy, and how much of it was none of the above (other
        # work on the machine, which makes every number here noisier).
        "machine_busy_pct": round(100 * busy / total, 1) if total > 0 else None,
        "others_pct": round(100 * (busy - sum(containers.values()) - sum(host.values())) / total, 1)
        if total > 0
        else None,
    }


def _busiest(item: tuple[str, float]) -> tuple[float, str]:
    return (-item[1], item[0])


def per_request_us(window_ms: Mapping[str, float], requests: float) -> dict[str, float]:
    """{name: microseconds of CPU per request} from a window's milliseconds."""
    if requests <= 0:
        return {}
    return {k: round(v * 1000 / requests, 1) for k, v in window_ms.items()}


def sum_ms(window_ms: Mapping[str, float], names: Iterable[str]) -> float:
    return round(sum(window_ms.get(n, 0.0) for n in names), 1)
