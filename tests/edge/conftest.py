"""The hostile-client suite's session: the shared compose cluster (tests/conftest.py `cluster`),
the attack runner that measures everyone else while an attack runs, long requests kept in
flight through every attack, and the results file (RSH_EDGE_RESULTS, default
.cache/edge/results.json) that docs/edge-security.md's table is generated from (report.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import requests
from integration.grpc_client import channel as grpc_channel
from integration.traffic import Traffic

from .measure import (
    EntryStats,
    failures,
    latency,
    port_proxy_nofile,
    port_proxy_pids,
    proxy_capacity,
    time_to_full_service,
)

if TYPE_CHECKING:
    from integration.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("RSH_EDGE_RESULTS", REPO / ".cache" / "edge" / "results.json"))
# The well-behaved clients running through every attack: 24 in all.
HTTP_CLIENTS = 18
GRPC_CLIENTS = 6
# Legitimate long work that must outlive every limit: a 60 s request, a 60 s HTTP stream and a
# 60 s gRPC stream, started with the first attack.
LONG_S = 60
SLOW_METADATA = (("application", "slow"),)


def raise_nofile() -> int:
    """The test process may hold 10,000+ sockets: soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_of(name: str) -> int | None:
    """The hard open-files limit of the first process called `name` this host shows (dockerd,
    docker-proxy), None when none is visible."""
    result = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    for pid in result.stdout.split():
        try:
            for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    value = line.split()[4]
                    return None if value == "unlimited" else int(value)
        except OSError:
            continue
    return None


@dataclass
class LongWork:
    """A 60 s request, a 60 s HTTP stream and a 60 s gRPC stream through the entry."""

    cluster: Cluster
    pb: tuple[Any, Any]
    results: dict[str, tuple[bool, str]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for name, fn in (
            ("request", self._request),
            ("stream", self._stream),
            ("grpc stream", self._grpc),
        ):
            thread = threading.Thread(target=self._run, args=(name, fn), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        start = time.monotonic()
        try:
            ok, detail = fn()
        except (requests.RequestException, grpc.RpcError, ValueError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {str(exc)[:200]}"
        self.results[name] = (ok, f"{detail} after {time.monotonic() - start:.1f}s")

    def _request(self) -> tuple[bool, str]:
        url = f"{self.cluster.base_url}/slow?seconds={LONG_S}"
        response = requests.get(url, timeout=(5, LONG_S + 60))
        return response.status_code == 200, f"status {response.status_code}"

    def _stream(self) -> tuple[bool, str]:
        url = f"{self.cluster.base_url}/slow/stream?seconds={LONG_S}&interval=0.5"
        with requests.get(url, stream=True, timeout=(5, 30)) as response:
            lines = [json.loads(line) for line in response.iter_lines() if line]
        done = lines[-1] if lines else {}
        return done.get("done") is True, f"{len(lines)} lines, last {done}"

    def _grpc(self) -> tuple[bool, str]:
        demo_pb2, demo_pb2_grpc = self.pb
        with grpc_channel(self.cluster) as chan:
            stub = demo_pb2_grpc.GreeterStub(chan)
            request = demo_pb2.HelloStreamRequest(name="long", count=120, interval_ms=500)
            call = stub.SayHelloStream(request, metadata=SLOW_METADATA, timeout=LONG_S + 60)
            indices = [reply.index for reply in call]
            ok = call.code() == grpc.StatusCode.OK and indices == list(range(1, 121))
            return ok, f"{call.code()} {len(indices)} messages"

    def wait(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(timeout=max(0.1, end - time.monotonic()))


@dataclass
class Edge:
    """Runs attacks through the entry while 24 well-behaved clients send requests, and keeps
    one result per attack."""

    cluster: Cluster
    pb: tuple[Any, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # container name -> Docker's restart count when the suite began (a node may have restarted
    # while the cluster came up: that is the cluster fixture's business, not an attack's).
    restarts_at_start: dict[str, int] = field(default_factory=dict)

    def restarts(self) -> dict[str, int]:
        return {c.name: int(c.attrs["RestartCount"]) for c in self.cluster.project.containers()}

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def flood_size(self, wanted: int) -> tuple[int, str]:
        """Connections for a flood on the HTTP port: `wanted`, or fewer when Docker's port proxy
        for it would run out of descriptors first (it then exits and the port stays dead: an
        engine limit, docs/edge-security.md), with a note saying so."""
        capacity = proxy_capacity(self.cluster.http_port)
        if capacity is None or capacity >= wanted + wanted // 10:
            return wanted, ""
        size = capacity * 85 // 100
        return size, (
            f" (not {wanted}: Docker's port proxy here holds about {capacity} connections, "
            f"open files {port_proxy_nofile(self.cluster.http_port)})"
        )

    def attack(self, name: str, port: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        entry = self.cluster.entry
        since = dt.datetime.now(dt.UTC)
        traffic = Traffic(
            self.cluster,
            self.pb,
            http_clients=HTTP_CLIENTS,
            grpc_clients=GRPC_CLIENTS,
            max_duration_s=180,
        )
        with EntryStats(entry) as stats, traffic:
            time.sleep(1.0)  # every client has its connection
            started = time.monotonic()
            observed = run()
            attack_s = time.monotonic() - started
            recovery_s = time_to_full_service(self.cluster.base_url)
            time.sleep(1.0)
        samples = traffic.snapshot()
        log = entry.logs(since=since, until=dt.datetime.now(dt.UTC))
        result = {
            "attack": name,
            "port": port,
            "attack_s": round(attack_s, 1),
            "requests": len(samples),
            "failed": sum(not s.ok for s in samples),
            "failures": failures(samples),
            **latency(samples),
            "peak_mem_mib": round(stats.peak_mem_bytes / 2**20, 1),
            "peak_cpu_percent": round(stats.peak_cpu_percent, 1),
            "entry_log_lines": len(log.splitlines()),
            "entry_log_bytes": len(log),
            "recovery_s": round(recovery_s, 2),
            "observed": observed,
        }
        self.results.append(result)
        print(
            f"\n[edge] {name}: {result['failed']} of {result['requests']} well-behaved requests "
            f"failed {result['failures'] or ''}; p50/p99/max {result['p50_ms']}/"
            f"{result['p99_ms']}/{result['max_ms']} ms; entry peak {result['peak_mem_mib']} MiB, "
            f"{result['peak_cpu_percent']}% CPU; {result['entry_log_lines']} log lines; full "
            f"service {result['recovery_s']} s after; observed {observed}"
        )
        return result


@pytest.fixture(scope="session")
def edge(cluster: Cluster, pb: tuple[Any, Any]) -> Iterator[Edge]:
    started = time.monotonic()
    runner = Edge(cluster, pb)
    runner.restarts_at_start = runner.restarts()
    code, version = cluster.project.exec(cluster.entry, ["haproxy", "-v"])
    runner.meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "haproxy": version.split("\n", 1)[0].strip() if code == 0 else "unknown",
        "test_process_nofile": raise_nofile(),
        "dockerd_nofile": nofile_of("dockerd"),
        # Whether Docker's userland proxy serves the published port (else the kernel forwards).
        "docker_proxy": bool(port_proxy_pids(cluster.http_port)),
        "docker_proxy_nofile": port_proxy_nofile(cluster.http_port),
        "well_behaved_clients": {"http": HTTP_CLIENTS, "grpc": GRPC_CLIENTS},
        "restarts_at_start": runner.restarts_at_start,
    }
    yield runner
    runner.meta["suite_s"] = round(time.monotonic() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"meta": runner.meta, "attacks": runner.results}, indent=2) + "\n"
    )
    print(f"\n[edge] results: {RESULTS}")


@pytest.fixture(scope="session")
def long_work(edge: Edge) -> LongWork:
    work = LongWork(edge.cluster, edge.pb)
    work.start()
    return work
