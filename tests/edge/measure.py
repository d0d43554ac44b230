"""What an attack did to everyone else: the well-behaved clients' failures and latency, the
entry container's peak memory and CPU, its log volume, and the time until a new connection is
served again once the attack stopped."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from docker.models.containers import Container
from integration.load import Sample

# Full service after an attack: a NEW connection gets 200 from the demo within this long.
RECOVERY_LIMIT_S = 5.0
PROBE_TIMEOUT_S = (1.0, 2.0)


class EntryStats:
    """Samples the entry container's memory and CPU (Docker's stats stream: the cgroup's
    numbers, about one per second) in a thread; keeps the peaks."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.peak_mem_bytes = 0
        self.peak_cpu_percent = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="entry-stats", daemon=True)

    def _run(self) -> None:
        stream = self.container.stats(stream=True, decode=True)
        try:
            for stats in stream:
                self._take(stats)
                if self._stop.is_set():
                    break
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()

    def _take(self, stats: dict[str, Any]) -> None:
        mem = stats.get("memory_stats", {})
        usage = int(mem.get("usage", 0)) - int(mem.get("stats", {}).get("inactive_file", 0))
        self.peak_mem_bytes = max(self.peak_mem_bytes, usage)
        cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
        total = cpu.get("cpu_usage", {}).get("total_usage", 0)
        pre_total = pre.get("cpu_usage", {}).get("total_usage", 0)
        system, pre_system = cpu.get("system_cpu_usage", 0), pre.get("system_cpu_usage", 0)
        cpus = cpu.get("online_cpus") or 1
        if pre_total and system > pre_system:
            percent = (total - pre_total) / (system - pre_system) * cpus * 100.0
            self.peak_cpu_percent = max(self.peak_cpu_percent, percent)

    def __enter__(self) -> EntryStats:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def time_to_full_service(base_url: str, limit_s: float = 30.0) -> float:
    """Seconds until a request on a NEW connection gets 200 from /hello (polled every 0.1 s)."""
    start = time.monotonic()
    while True:
        try:
            with requests.Session() as session:
                response = session.get(f"{base_url}/hello", timeout=PROBE_TIMEOUT_S)
            if response.status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        if time.monotonic() - start > limit_s:
            return time.monotonic() - start
        time.sleep(0.1)


def latency(samples: Sequence[Sample]) -> dict[str, float]:
    durations = sorted(s.duration for s in samples) or [0.0]
    return {
        "p50_ms": round(durations[len(durations) // 2] * 1000, 1),
        "p99_ms": round(durations[min(len(durations) - 1, int(len(durations) * 0.99))] * 1000, 1),
        "max_ms": round(durations[-1] * 1000, 1),
    }


def failures(samples: Sequence[Sample]) -> dict[str, int]:
    return dict(Counter(s.outcome for s in samples if not s.ok))


# Docker's userland port proxy holds this many file descriptors per client connection.
PROXY_FDS_PER_CONNECTION = 6


def port_proxy_pids(host_port: int) -> list[str]:
    """Pids of the `docker-proxy` serving 127.0.0.1:`host_port` (none: userland-proxy off, or an
    engine on another machine)."""
    result = subprocess.run(
        ["pgrep", "-f", f"docker-proxy.*-host-port {host_port} "],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.split()


def loopback_forwarded_by_kernel() -> bool | None:
    """Whether the engine forwards connections to 127.0.0.1 ports itself (userland-proxy off):
    its nat OUTPUT rule then sends loopback destinations to the DOCKER chain too (with the proxy
    on, Docker excludes 127.0.0.0/8 there). None when iptables cannot be read here."""
    try:
        result = subprocess.run(
            ["iptables", "-t", "nat", "-S", "OUTPUT"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    jumps = [line for line in result.stdout.splitlines() if line.endswith("-j DOCKER")]
    return any("127.0.0.0/8" not in line for line in jumps)


def port_proxy_nofile(host_port: int) -> int | None:
    """The open-files limit of the `docker-proxy` serving 127.0.0.1:`host_port`; None when no
    such process is visible (userland-proxy off, or an engine on another machine)."""
    for pid in port_proxy_pids(host_port):
        try:
            for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    value = line.split()[4]
                    return None if value == "unlimited" else int(value)
        except OSError:
            continue
    return None


def proxy_capacity(host_port: int) -> int | None:
    """Client connections the port's proxy can hold before it runs out of descriptors and
    exits (None: no proxy, no such limit)."""
    nofile = port_proxy_nofile(host_port)
    return None if nofile is None else (nofile - 100) // PROXY_FDS_PER_CONNECTION
