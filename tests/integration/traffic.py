"""Mixed traffic through the entry for the fault tests: HTTP clients (load.Load) and gRPC
clients (grpc_client.GrpcLoad) at once, and what a fault did to them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from .cluster import APPS, Cluster, note
from .grpc_client import GrpcLoad
from .load import Load, Sample, summarize

# 32 clients in all, as the issue asks: most of them HTTP, some gRPC.
HTTP_CLIENTS = 24
GRPC_CLIENTS = 8
# The slowest successful request through a fault where a replica of its app survives, whenever
# it was sent (during the fault too): the nodes' HAProxy give up connecting to a dead replica
# after 1 s (compose) and the entry to a dead node after 500 ms, each retrying elsewhere, so no
# request is held for long. Measured (docs/latency-and-retries.md): at most 3.5 s (worker loss,
# a request sent 15 s after the kill, while Serve's replacements started on a machine shared
# with image builds); under 2.5 s in every other fault. Below the clients' own 10 s timeouts,
# so that it still means something.
SLOWEST_OK_S = 8.0
# In the head faults (test_6, test_7_serve_config) each client sends at most 3 requests a
# second: 96/s for 32 clients, about half of what the 2-worker cluster answers to clients that
# send as fast as it answers. A head that starts runs some fifteen Python processes on the cores
# the replicas use; with saturating clients (CI on c1594da) the workers' HAProxy answered 501
# requests with 500 (Ray's page for "no server") within 3.5 s while the head recovered, and a
# local run saw 10 s timeouts. Paced clients keep these tests about the fault, not the queue.
HEAD_FAULT_RATE_PER_CLIENT = 3.0


class Snapshots(Protocol):
    """Anything that records requests: Traffic, load.Load, grpc_client.GrpcLoad."""

    def snapshot(self) -> list[Sample]: ...


class Traffic:
    """HTTP and gRPC load through the entry (the published ports) until stopped."""

    def __init__(
        self,
        cluster: Cluster,
        pb: tuple[Any, Any],
        *,
        http_clients: int = HTTP_CLIENTS,
        grpc_clients: int = GRPC_CLIENTS,
        max_duration_s: float = 240,
        per_client_rate: float | None = None,
    ) -> None:
        urls = {f"{cluster.base_url}{prefix}": app for app, prefix in APPS.items()}
        self.http = Load(
            urls,
            concurrency=http_clients,
            max_duration_s=max_duration_s,
            per_client_rate=per_client_rate,
        )
        self.grpc = GrpcLoad(
            cluster,
            pb,
            concurrency=grpc_clients,
            max_duration_s=max_duration_s,
            per_client_rate=per_client_rate,
        )

    def __enter__(self) -> Traffic:
        self.http.start()
        self.grpc.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.stop()
        self.grpc.stop()

    def snapshot(self) -> list[Sample]:
        return [*self.http.snapshot(), *self.grpc.snapshot()]

    def by_protocol(self) -> dict[str, list[Sample]]:
        return {"HTTP": self.http.snapshot(), "gRPC": self.grpc.snapshot()}

    def elapsed(self) -> float:
        return max(self.http.stopped_at, self.grpc.stopped_at) - self.http.started_at

    def reports(self, fault: Fault) -> list[FaultReport]:
        """What the fault did to each protocol, each noted with its first failure."""
        elapsed = self.elapsed()
        reports = [FaultReport(p, s, fault) for p, s in self.by_protocol().items()]
        for report in reports:
            note(f"  {report.line(elapsed)}")
            if report.failed:
                print(f"  first failure: {report.failed[0].outcome} {report.failed[0].detail}")
        return reports


@dataclass(frozen=True)
class Fault:
    """When a fault was caused: `at` just before the action (a kill), `done` once it returned
    (the kill reached the process somewhere in between)."""

    at: float
    done: float


def run_through(
    traffic: Snapshots,
    action: Callable[[], None],
    *,
    settle_s: float = 3,
    until: Callable[[], bool] | None = None,
    steady_s: float = 10,
    give_up_s: float = 240,
) -> Fault:
    """Under the running traffic: wait settle_s, do `action`, then wait until `until()` holds
    (if given) and no request has failed for steady_s."""
    time.sleep(settle_s)
    at = time.monotonic()
    action()
    done = time.monotonic()
    deadline = at + give_up_s
    while time.monotonic() < deadline:
        if until is None or until():
            break
        time.sleep(1)
    while time.monotonic() < deadline:
        now = time.monotonic()
        last_failure = max((s.end for s in traffic.snapshot() if not s.ok), default=at)
        if now - last_failure >= steady_s and now - at >= steady_s:
            break
        time.sleep(1)
    return Fault(at, done)


@dataclass(frozen=True)
class FaultReport:
    """What one protocol's requests saw around a fault."""

    protocol: str
    samples: Sequence[Sample]
    fault: Fault

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    @property
    def in_flight_at_fault(self) -> list[Sample]:
        """Requests that may have been on their way when the fault struck."""
        return [s for s in self.samples if s.start <= self.fault.done and s.end > self.fault.at]

    def failed_not_in_flight(self) -> list[Sample]:
        """Failed requests that were sent after the fault (never acceptable for a lost node)."""
        return [s for s in self.failed if s.start > self.fault.done]

    def slowest_ok(self, count: int = 5) -> list[Sample]:
        """The slowest successful requests, slowest first."""
        return sorted((s for s in self.samples if s.ok), key=lambda s: -s.duration)[:count]

    def latency_problem(self, bound_s: float = SLOWEST_OK_S) -> str | None:
        """None when every successful request took at most bound_s, else what did not."""
        slow = [s for s in self.slowest_ok(count=len(self.samples)) if s.duration > bound_s]
        if not slow:
            return None
        listed = ", ".join(
            f"{s.duration:.2f}s (sent {s.start - self.fault.at:+.2f}s, {s.node_ip})"
            for s in slow[:10]
        )
        return f"{self.protocol}: {len(slow)} successful requests took over {bound_s:g}s: {listed}"

    def started_after(self, offset_s: float) -> list[Sample]:
        """Requests sent `offset_s` or more after the fault was done."""
        return [s for s in self.samples if s.start >= self.fault.done + offset_s]

    def line(self, elapsed_s: float) -> str:
        """One line for the terminal summary (elapsed_s 0: without the rate)."""
        failed = self.failed
        outcomes = dict(Counter(s.outcome for s in failed))
        last = max((s.end - self.fault.at for s in failed), default=0.0)
        after_1s = self.started_after(1.0)
        slowest = max((s.duration for s in after_1s), default=0.0)
        top = self.slowest_ok(count=1)
        slowest_any = (
            f"{top[0].duration * 1000:.0f} ms (sent {top[0].start - self.fault.at:+.2f}s)"
            if top
            else "-"
        )
        return (
            f"{self.protocol}: {summarize(self.samples, elapsed_s)}; "
            f"{len(self.in_flight_at_fault)} in flight at the fault, {len(failed)} failed"
            f"{' ' + repr(outcomes) if outcomes else ''} ({len(self.failed_not_in_flight())} "
            f"sent after it; last failure ended +{last:.2f}s); sent 1 s or more after it: "
            f"{len(after_1s)}, {sum(not s.ok for s in after_1s)} failed, slowest "
            f"{slowest * 1000:.0f} ms; slowest successful request of all {slowest_any}"
        )
