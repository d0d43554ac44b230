"""Bounded load loops for the tests: LoadLoop (N threads calling a per-call function) and Load,
HTTP through it with one keep-alive requests.Session per thread; grpc_client.py's GrpcLoad is
the same loop with a gRPC channel per thread.

Only ever pointed at the test cluster's published 127.0.0.1 ports. Every request is recorded
(start, duration, outcome, which node answered) so a test can count failures and say when,
relative to an event such as a node kill, traffic was back to 100% success.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import requests

# connect, read: a request stuck on a dead node counts as a failure after this long.
REQUEST_TIMEOUT_S = (3.0, 10.0)


@dataclass(frozen=True)
class Sample:
    start: float  # time.monotonic() when the request was sent
    duration: float
    ok: bool
    outcome: str  # "200", "503", "ReadTimeout", ...
    app: str | None = None
    node_ip: str | None = None
    detail: str = ""  # response body or exception text of a failure, shortened

    @property
    def end(self) -> float:
        return self.start + self.duration


# One call of a load thread: the call's number in that thread -> what happened.
PerCall = Callable[[int], Sample]


class LoadLoop:
    """Keeps `concurrency` calls in flight until stopped: one thread each, calling the function
    its `per_thread(index)` context yields (which owns the thread's client: a keep-alive
    session, a gRPC channel). Every call is recorded as a Sample.

    Bounded in time (max_duration_s) and count (max_requests) so a test can never hang on it.
    With `per_client_rate`, each thread starts at most that many calls per second (paced, not
    as fast as the cluster answers): traffic a cluster serves below saturation, whose latency
    then measures the fault rather than a queue of clients.
    """

    def __init__(
        self,
        per_thread: Callable[[int], AbstractContextManager[PerCall]],
        *,
        concurrency: int,
        max_duration_s: float,
        max_requests: int = 2_000_000,
        join_timeout_s: float = 20,
        per_client_rate: float | None = None,
    ) -> None:
        self.per_thread = per_thread
        self.interval_s = 1 / per_client_rate if per_client_rate else 0.0
        self.concurrency = concurrency
        self.max_duration_s = max_duration_s
        self.max_requests = max_requests
        self.join_timeout_s = join_timeout_s
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0
        self.stopped_at = 0.0

    def _worker(self, index: int) -> None:
        deadline = self.started_at + self.max_duration_s
        with self.per_thread(index) as call:
            n = 0
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if len(self.samples) >= self.max_requests:
                        return
                sample = call(n)
                n += 1
                with self._lock:
                    self.samples.append(sample)
                # Paced: the next call starts one interval after this one did (at once if late).
                self._stop.wait(max(0.0, sample.start + self.interval_s - time.monotonic()))

    def start(self) -> Self:
        self.started_at = time.monotonic()
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._worker, args=(i,), name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.join_timeout_s)
        self.stopped_at = time.monotonic()
        return self.snapshot()

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Load(LoadLoop):
    """HTTP GETs to `urls` (round-robin), each thread with its own keep-alive requests.Session.

    A request is a success when it answers 200 with JSON whose "app" is the expected one
    (urls maps URL -> app name).
    """

    def __init__(
        self,
        urls: dict[str, str],
        *,
        concurrency: int = 32,
        max_duration_s: float = 180,
        max_requests: int = 2_000_000,
        per_client_rate: float | None = None,
    ) -> None:
        self.urls = list(urls.items())
        super().__init__(
            self._session_calls,
            concurrency=concurrency,
            max_duration_s=max_duration_s,
            max_requests=max_requests,
            per_client_rate=per_client_rate,
            join_timeout_s=REQUEST_TIMEOUT_S[0] + REQUEST_TIMEOUT_S[1] + 5,
        )

    @contextmanager
    def _session_calls(self, index: int) -> Iterator[PerCall]:
        session = requests.Session()

        def call(n: int) -> Sample:
            nonlocal session
            url, app = self.urls[(index + n) % len(self.urls)]
            start = time.monotonic()
            try:
                response = session.get(url, timeout=REQUEST_TIMEOUT_S)
                body = response.json() if response.status_code == 200 else {}
                ok = response.status_code == 200 and body.get("app") == app
                return Sample(
                    start,
                    time.monotonic() - start,
                    ok,
                    str(response.status_code) if ok or response.status_code != 200 else "bad-body",
                    body.get("app"),
                    body.get("node_ip"),
                    "" if ok else response.text[:200],
                )
            except (requests.RequestException, ValueError) as exc:
                # Start over with fresh connections after a transport error.
                session.close()
                session = requests.Session()
                return Sample(
                    start,
                    time.monotonic() - start,
                    False,
                    type(exc).__name__,
                    detail=str(exc)[:200],
                )

        try:
            yield call
        finally:
            session.close()


def kill_and_wait_until_steady(
    snapshot: Callable[[], Sequence[Sample]],
    kill: Callable[[], None],
    *,
    steady_s: float,
    give_up_s: float = 120,
) -> float:
    """Kills (under the caller's running load), then waits until no request has failed for
    `steady_s` (at least `steady_s` after the kill, at most `give_up_s`).

    Returns the time of the kill."""
    killed_at = time.monotonic()
    kill()
    while True:
        now = time.monotonic()
        last_failure = max((s.end for s in snapshot() if not s.ok), default=killed_at)
        if now - killed_at >= steady_s and now - last_failure >= steady_s:
            return killed_at
        if now - killed_at > give_up_s:
            return killed_at
        time.sleep(1)


def summarize(samples: Sequence[Sample], elapsed_s: float) -> str:
    """One line: totals, rate, failures by outcome, latency."""
    failed = [s for s in samples if not s.ok]
    outcomes = Counter(s.outcome for s in failed)
    durations = sorted(s.duration for s in samples) or [0.0]
    p50 = durations[len(durations) // 2]
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    rate = len(samples) / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{len(samples)} requests in {elapsed_s:.1f}s ({rate:.0f}/s), {len(failed)} failed"
        f"{' ' + dict(outcomes).__repr__() if outcomes else ''}; "
        f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
        f" max {durations[-1] * 1000:.0f} ms"
    )
