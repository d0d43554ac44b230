"""Long requests survive HAProxy reloads (issue 15).

Every change of replicas makes Ray's HAProxyManager reload HAProxy: a new process takes the
listeners, the old one soft-stops and keeps the connections it holds until they finish or until
`hard-stop-after`. These tests keep minute-long requests in flight (plain HTTP, a streamed HTTP
response, a server-streaming gRPC call) while the demo's `slow` app scales 2 -> 4 -> 1 -> 2
twice, with 32 clients of short requests beside them: not one may fail, every stream must arrive
whole and in order. Alongside, they count the old HAProxy processes on every node and their
memory (RSS and PSS from /proc), the cost of letting them drain.

Beside them, an app as users write it (issue 27): the slow app again as `slow-default-shutdown`,
on Serve's default graceful shutdown (20 s), scaled the same way, holding 60 s and 120 s
requests. A replica Serve scales away is killed 20 s later with what it holds, so those requests
may be cut; each must be answered once (200) or fail with a 5xx its client sees, and run on a
replica at most once: the replicas log each request's id as they start it, and the test counts
those lines on every node (a replay by any proxy would show as two).

A keep-alive connection held by an old process is tested on its own: its next request, sent
after the reload, is served in full (HAProxy then closes the connection), and a gRPC channel
idle across a reload keeps working.

Traffic goes to the published ports only (cluster.base_url, cluster.grpc_target), whichever
HAProxy answers there. The app is scaled back to the demo's 2 replicas at the end.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import requests
from docker.models.containers import Container
from ray_serve_haproxy.settings import SERVE_KEEP_ALIVE_S

from .cluster import APPS, Cluster, note, wait_for
from .grpc_client import channel as grpc_channel
from .load import Load, summarize

pytestmark = pytest.mark.integration

SLOW_APP = "slow"
METADATA = (("application", SLOW_APP),)
# Ray's HAProxy runs `haproxy ... -f /tmp/haproxy-serve/<node id>/haproxy.cfg`: what tells its
# processes from any other HAProxy in a container (RAY_SERVE_HAPROXY_CONFIG_FILE_LOC's dir).
RAY_HAPROXY_CONFIG_DIR = "/tmp/haproxy-serve/"

LONG_S = 60
STREAM_INTERVAL_S = 0.5
STREAM_COUNT = round(LONG_S / STREAM_INTERVAL_S)
# Clients that keep one long request each in flight, starting the next when one ends.
LONG_CLIENTS = {"http": 3, "stream": 2, "grpc": 2}
SHORT_CONCURRENCY = 32
CYCLES = 2
STEPS = (4, 1, 2)  # replicas of `slow`, from the demo's 2
# After HAProxy lists the new replicas: traffic on them before the next change.
HOLD_S = 6
# From the deploy until HAProxy lists exactly the new replicas, all UP (a scale-up starts
# replica actors: 5-10 s measured in test_3_scaling).
MAX_PICKUP_S = 90
SAMPLE_EVERY_S = 2.0
CUT_APP = "slow-default-shutdown"
CUT_PREFIX = f"/{CUT_APP}"
# Counted requests of CUT_APP: one of each length before the first 2 -> 4 and before the first
# 4 -> 1, so Serve stops replicas that hold some of them, once or twice.
COUNTED_SECONDS = (60, 120)
COUNTED_WAVES = 2
FILL_LIMIT = 16


# --- the cluster, with the slow app at its demo size ------------------------------------------


def slow_servers(cluster: Cluster, app: str = SLOW_APP) -> tuple[int, int]:
    """(servers, servers UP) of an app's backend in the head's Ray HAProxy."""
    rows = cluster.replica_servers().get(f"http-{app}", [])
    return len(rows), sum(1 for r in rows if r["status"].startswith("UP"))


def with_cut_app(config: dict[str, Any], replicas: int) -> dict[str, Any]:
    """`config` plus CUT_APP: the slow app's deployment on Serve's default graceful shutdown."""
    slow = next(app for app in config["applications"] if app["name"] == SLOW_APP)
    cut = copy.deepcopy(slow)
    cut.update(name=CUT_APP, route_prefix=CUT_PREFIX)
    for deployment in cut["deployments"]:
        deployment.pop("graceful_shutdown_timeout_s", None)
        deployment["num_replicas"] = replicas
    config["applications"].append(cut)
    return config


def scale_slow(
    cluster: Cluster, replicas: int, timeout_s: float = MAX_PICKUP_S, *, cut_app: bool = False
) -> float:
    """Deploys the demo config with `replicas` of slow (and of CUT_APP when `cut_app`, which a
    deploy without it removes); returns seconds until HAProxy has them."""
    start = time.monotonic()
    config = cluster.scaled_config({SLOW_APP: replicas})
    apps = [SLOW_APP, CUT_APP] if cut_app else [SLOW_APP]
    cluster.deploy(with_cut_app(config, replicas) if cut_app else config)
    wait_for(
        f"HAProxy listing {replicas} replicas of {apps}, all UP",
        lambda: all(slow_servers(cluster, app) == (replicas, replicas) for app in apps),
        timeout_s=timeout_s,
        interval_s=0.25,
    )
    if not cut_app:
        wait_for(
            f"{CUT_PREFIX} gone from HAProxy's routes",
            lambda: CUT_PREFIX not in cluster.routes(),
            timeout_s=timeout_s,
            interval_s=0.5,
        )
    return time.monotonic() - start


# --- requests counted on the replicas ----------------------------------------------------------

# Every line a replica of slow_app logs as it starts a request with an id, on every node
# (session_latest is a link to one of the session directories: not read twice). Serve's prefix:
# `INFO <date> <time> <app>_<deployment> <replica id> <request uuid> -- <message>`.
STARTED = (
    "cat /tmp/ray/session_[0-9]*/logs/serve/* 2>/dev/null"
    " | grep -E -o '[^ ]+ [^ ]+ -- slow: request [A-Za-z0-9_-]+ started' || true"
)


def started_lines(cluster: Cluster) -> list[tuple[str, str]]:
    """(replica id, request id) of every start of a request with an id, on every node."""
    started = []
    for container in [cluster.head, *(w.container for w in cluster.workers())]:
        code, out = cluster.project.sh(container, STARTED)
        assert code == 0, out
        for line in out.splitlines():
            words = line.split()
            if len(words) == 7:
                started.append((words[0], words[5]))
    return started


def started_on_replicas(cluster: Cluster) -> Counter[str]:
    """request id -> how many times a replica started it, over every node's Serve logs."""
    return Counter(request for _, request in started_lines(cluster))


def start_counted(counted: list[CountedRequest], seconds: int, base_url: str) -> None:
    """One more counted request, in a thread of its own (kept on the request)."""
    request = CountedRequest(seconds)
    request.thread = threading.Thread(target=request.run, args=(base_url,))
    request.thread.start()
    counted.append(request)


def fill_cut_replicas(cluster: Cluster, counted: list[CountedRequest]) -> None:
    """More counted requests until every replica of CUT_APP holds one in flight (seen in their
    logs), at most FILL_LIMIT in all: the next scale-down then stops replicas that hold some.
    Without this, the entry and the nodes' leastconn may send them all to one replica, the one
    Serve keeps (CI on 426200e, three workers: no request cut)."""
    while len(counted) < FILL_LIMIT:
        rows = cluster.replica_servers().get(f"http-{CUT_APP}", [])
        replicas = {row["svname"].rsplit("-", 1)[-1] for row in rows}
        in_flight = {r.id for r in counted if not r.end}
        held = {replica for replica, request in started_lines(cluster) if request in in_flight}
        if replicas and replicas <= held:
            return
        seconds = COUNTED_SECONDS[len(counted) % len(COUNTED_SECONDS)]
        start_counted(counted, seconds, cluster.base_url)
        time.sleep(1.0)


@dataclass
class CountedRequest:
    """One GET of CUT_APP with its own id; `status` None when no HTTP answer came."""

    seconds: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    start: float = 0.0
    end: float = 0.0
    status: int | None = None
    slept: Any = None
    error: str = ""
    thread: threading.Thread | None = None

    def run(self, base_url: str) -> None:
        self.start = time.monotonic()
        try:
            # A new connection per request, as a client that sends one long request has.
            answer = requests.get(
                f"{base_url}{CUT_PREFIX}?seconds={self.seconds}&id={self.id}",
                timeout=(5, self.seconds + 60),
            )
            self.status = answer.status_code
            if answer.status_code == 200:
                self.slept = answer.json().get("slept")
        except (requests.RequestException, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {str(exc)[:200]}"
        self.end = time.monotonic()

    def describe(self, runs: int) -> str:
        return (
            f"{self.seconds}s request {self.id[:8]}: {self.status or self.error}"
            f" after {self.end - self.start:.1f}s, started on replicas {runs}x"
        )


@pytest.fixture(scope="module")
def slow_cluster(cluster: Cluster, pb: tuple[Any, Any]) -> Iterator[Cluster]:
    if SLOW_APP not in cluster.expected_routes.values():
        pytest.skip(f"the image's demo config has no {SLOW_APP!r} app (built before it)")
    cluster.wait_serving(timeout_s=300)
    scale_slow(cluster, 2, timeout_s=300)
    yield cluster
    # Leave the demo as deployed for the tests after these.
    scale_slow(cluster, 2, timeout_s=300)


# --- old HAProxy processes and their memory ----------------------------------------------------

# pid, VmRSS and Pss (KiB) of each HAProxy process whose command line names Ray's config dir.
PROCS = (
    "for d in /proc/[0-9]*; do"
    ' [ "$(cat $d/comm 2>/dev/null)" = haproxy ] || continue;'
    f" case \"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\" in *' -f {RAY_HAPROXY_CONFIG_DIR}'*)"
    " echo \"${d#/proc/} $(awk '/^VmRSS:/{print $2}' $d/status)"
    " $(awk '/^Pss:/{print $2}' $d/smaps_rollup 2>/dev/null || echo 0)\";; esac; done"
)


@dataclass(frozen=True)
class ProcSample:
    at: float
    node: str
    pids: tuple[int, ...]
    rss_kib: tuple[int, ...]
    pss_kib: tuple[int, ...]


def ray_haproxy_procs(cluster: Cluster, container: Container) -> list[tuple[int, int, int]]:
    """(pid, RSS KiB, PSS KiB) of every Ray-managed HAProxy process in `container`."""
    code, out = cluster.project.sh(container, PROCS)
    assert code == 0, out
    procs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            procs.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return sorted(procs)


class ProcMonitor:
    """Samples the Ray HAProxy processes of every node every SAMPLE_EVERY_S seconds."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.samples: list[ProcSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-monitor", daemon=True)

    def _run(self) -> None:
        nodes = [("head", self.cluster.head)]
        nodes += [(w.name, w.container) for w in self.cluster.workers()]
        while not self._stop.is_set():
            for name, container in nodes:
                try:
                    procs = ray_haproxy_procs(self.cluster, container)
                except Exception:  # a node between states; the next sample will do
                    continue
                self.samples.append(
                    ProcSample(
                        time.monotonic(),
                        name,
                        tuple(p for p, _, _ in procs),
                        tuple(r for _, r, _ in procs),
                        tuple(s for _, _, s in procs),
                    )
                )
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> ProcMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def reloads(self, node: str) -> list[float]:
        """When a new HAProxy process first showed up on `node` (after the first sample)."""
        seen: set[int] = set()
        times = []
        for sample in (s for s in self.samples if s.node == node):
            new = set(sample.pids) - seen
            if seen and new:
                times.append(sample.at)
            seen |= set(sample.pids)
        return times

    def summary(self) -> str:
        lines = []
        for node in sorted({s.node for s in self.samples}):
            mine = [s for s in self.samples if s.node == node]
            most = max(mine, key=lambda s: len(s.pids))
            rss = [r for s in mine for r in s.rss_kib]
            pss = [p for s in mine for p in s.pss_kib]
            total = max(sum(s.rss_kib) for s in mine)
            lines.append(
                f"  {node}: {len(self.reloads(node))} reloads seen, at most {len(most.pids)}"
                f" HAProxy processes at once ({len(most.pids) - 1} draining); per process RSS"
                f" median {statistics.median(rss) / 1024:.1f} MiB, max {max(rss) / 1024:.1f}"
                f" MiB, PSS median {statistics.median(pss) / 1024:.1f} MiB; all processes"
                f" together at most {total / 1024:.1f} MiB RSS"
            )
        return "\n".join(lines)


# --- long requests ------------------------------------------------------------------------------


@dataclass
class LongResult:
    kind: str
    start: float
    end: float
    ok: bool
    detail: str
    crossed: int = 0  # reloads (on the head) that happened while it was in flight


@dataclass
class LongClients:
    """Threads that each keep one long request in flight until told to stop starting new ones."""

    cluster: Cluster
    pb: tuple[Any, Any]
    results: list[LongResult] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _http(self) -> tuple[bool, str]:
        response = requests.get(
            f"{self.cluster.base_url}/slow?seconds={LONG_S}", timeout=(5, LONG_S + 60)
        )
        body = response.json() if response.status_code == 200 else {}
        ok = response.status_code == 200 and body.get("slept") == LONG_S
        return ok, f"{response.status_code} {response.text[:200] if not ok else ''}"

    def _stream(self) -> tuple[bool, str]:
        url = f"{self.cluster.base_url}/slow/stream?seconds={LONG_S}&interval={STREAM_INTERVAL_S}"
        with requests.get(url, stream=True, timeout=(5, 30)) as response:
            if response.status_code != 200:
                return False, f"{response.status_code} {response.text[:200]}"
            lines = [json.loads(line) for line in response.iter_lines() if line]
        indices = [line["index"] for line in lines if "index" in line]
        done = lines[-1] if lines else {}
        ok = indices == list(range(1, STREAM_COUNT + 1)) and done == {
            "done": True,
            "count": STREAM_COUNT,
        }
        return ok, f"{len(indices)} chunks, last {lines[-1] if lines else None}"

    def _grpc(self, channel: grpc.Channel) -> tuple[bool, str]:
        demo_pb2, demo_pb2_grpc = self.pb
        stub = demo_pb2_grpc.GreeterStub(channel)
        request = demo_pb2.HelloStreamRequest(
            name="long", count=STREAM_COUNT, interval_ms=round(STREAM_INTERVAL_S * 1000)
        )
        call = stub.SayHelloStream(request, metadata=METADATA, timeout=LONG_S + 60)
        indices = [reply.index for reply in call]
        ok = call.code() == grpc.StatusCode.OK and indices == list(range(1, STREAM_COUNT + 1))
        return ok, f"{call.code()} {len(indices)} messages"

    def _loop(self, kind: str) -> None:
        channel = grpc_channel(self.cluster) if kind == "grpc" else None
        try:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    if kind == "http":
                        ok, detail = self._http()
                    elif kind == "stream":
                        ok, detail = self._stream()
                    else:
                        assert channel is not None
                        ok, detail = self._grpc(channel)
                except (requests.RequestException, grpc.RpcError, ValueError) as exc:
                    ok, detail = False, f"{type(exc).__name__}: {str(exc)[:300]}"
                with self._lock:
                    self.results.append(LongResult(kind, start, time.monotonic(), ok, detail))
        finally:
            if channel is not None:
                channel.close()

    def start_wave(self, wave: int) -> None:
        """Starts the `wave`-th client of each kind that has one. Waves start between scaling
        steps, so long requests sit on different HAProxy processes and meet the reloads at
        different points of their minute."""
        for kind, count in LONG_CLIENTS.items():
            if wave < count:
                thread = threading.Thread(target=self._loop, args=(kind,), name=f"{kind}-{wave}")
                thread.start()
                self._threads.append(thread)

    def finish(self) -> list[LongResult]:
        """No new requests; waits for those in flight (each ends within LONG_S + 60)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=LONG_S + 90)
        assert not any(t.is_alive() for t in self._threads), "a long request never ended"
        return list(self.results)


def test_long_requests_streams_and_grpc_streams_survive_scaling(
    slow_cluster: Cluster, pb: tuple[Any, Any]
) -> None:
    cluster = slow_cluster
    urls = {f"{cluster.base_url}{prefix}": app for app, prefix in APPS.items()}
    urls[f"{cluster.base_url}/slow?seconds=0"] = SLOW_APP
    steps: list[tuple[int, float, float]] = []  # (replicas, deploy time, pickup s)
    long_clients = LongClients(cluster, pb)
    scale_slow(cluster, 2, cut_app=True)
    counted: list[CountedRequest] = []
    with ProcMonitor(cluster) as monitor:
        with Load(urls, concurrency=SHORT_CONCURRENCY, max_duration_s=600) as load:
            waves = max(LONG_CLIENTS.values())
            for _ in range(CYCLES):
                for replicas in STEPS:
                    if len(steps) < waves:
                        long_clients.start_wave(len(steps))
                    if len(steps) < COUNTED_WAVES:
                        for seconds in COUNTED_SECONDS:
                            start_counted(counted, seconds, cluster.base_url)
                    if len(steps) < max(waves, COUNTED_WAVES):
                        time.sleep(3)  # the new long requests are in flight
                    if len(steps) == STEPS.index(1):  # before the first 4 -> 1
                        fill_cut_replicas(cluster, counted)
                    at = time.monotonic()
                    pickup = scale_slow(cluster, replicas, cut_app=True)
                    steps.append((replicas, at, pickup))
                    time.sleep(HOLD_S)
            results = long_clients.finish()
            threads = [r.thread for r in counted if r.thread]
            for thread in threads:
                thread.join(timeout=max(COUNTED_SECONDS) + 90)
            assert not any(t.is_alive() for t in threads), "a counted request never ended"
        short = load.snapshot()
        elapsed = load.stopped_at - load.started_at
        # Once their last connection closed, the old processes must be gone (nothing leaks).
        drained_from = time.monotonic()
        for name, container in [("head", cluster.head)] + [
            (w.name, w.container) for w in cluster.workers()
        ]:
            wait_for(
                f"one Ray HAProxy process left on {name}",
                lambda c=container: len(ray_haproxy_procs(cluster, c)) <= 1,  # type: ignore[misc]
                timeout_s=120,
                interval_s=1,
            )
        drained_in = time.monotonic() - drained_from

    reloads = monitor.reloads("head")
    for result in results:
        result.crossed = sum(1 for t in reloads if result.start < t - SAMPLE_EVERY_S < result.end)
    note(
        "\nscaling of slow: "
        + ", ".join(f"->{n} in {p:.1f}s" for n, _, p in steps)
        + f"; {len(reloads)} reloads seen on the head"
    )
    for kind in LONG_CLIENTS:
        mine = [r for r in results if r.kind == kind]
        failed = [r for r in mine if not r.ok]
        crossed = sorted(r.crossed for r in mine)
        note(
            f"  {kind} ({LONG_S}s each): {len(mine)} requests, {len(failed)} failed; reloads"
            f" each crossed: {crossed}; durations"
            f" {min(r.end - r.start for r in mine):.1f}-{max(r.end - r.start for r in mine):.1f}s"
        )
    note(f"  short requests ({SHORT_CONCURRENCY} clients): {summarize(short, elapsed)}")
    runs = started_on_replicas(cluster)
    # One line: the session's summary keeps a note's first line only.
    note(
        f"  {CUT_APP} (Serve's default graceful shutdown), each request counted on the replicas: "
        + "; ".join(r.describe(runs[r.id]) for r in counted)
    )
    scale_slow(cluster, STEPS[-1])  # CUT_APP removed
    note("old HAProxy processes while draining:\n" + monitor.summary())
    note(f"  every node back to one HAProxy process {drained_in:.1f}s after the last request")

    # Never replayed: no request ran twice; answered in full, or failed with a 5xx its client
    # sees (a cut never ends as a closed connection or a client timeout).
    replayed = [r.describe(runs[r.id]) for r in counted if runs[r.id] > 1]
    assert not replayed, f"requests run more than once: {replayed}"
    for r in counted:
        if r.status == 200:
            assert r.slept == r.seconds and runs[r.id] == 1, r.describe(runs[r.id])
        else:
            assert r.status is not None and 500 <= r.status < 600, r.describe(runs[r.id])
    # Not vacuous: Serve stopped a replica that held some of them (so a replay could happen).
    assert any(r.status != 200 for r in counted), "no counted request was cut by a scale-down"
    failed_long = [r for r in results if not r.ok]
    assert not failed_long, "long requests failed: " + "; ".join(
        f"{r.kind} after {r.end - r.start:.1f}s: {r.detail}" for r in failed_long[:10]
    )
    failed_short = [s for s in short if not s.ok]
    assert not failed_short, (
        f"{len(failed_short)} of {len(short)} short requests failed:"
        f" {[(s.outcome, s.detail[:80]) for s in failed_short[:10]]}"
    )
    assert len(short) > 1000
    # Not vacuous: reloads happened, old processes drained alongside the new ones, and every
    # kind of long request was in flight across several of them.
    assert len(reloads) >= len(STEPS) * CYCLES, reloads
    assert max(len(s.pids) for s in monitor.samples if s.node == "head") >= 2
    for kind in LONG_CLIENTS:
        assert max(r.crossed for r in results if r.kind == kind) >= 2, kind


def _request(conn: http.client.HTTPConnection, path: str) -> tuple[int, str | None, Any, float]:
    start = time.monotonic()
    conn.request("GET", path)
    response = conn.getresponse()
    body = json.loads(response.read())
    return response.status, response.getheader("Connection"), body, time.monotonic() - start


def test_keepalive_connections_get_their_last_request_served_after_a_reload(
    slow_cluster: Cluster, pb: tuple[Any, Any]
) -> None:
    cluster = slow_cluster
    demo_pb2, demo_pb2_grpc = pb
    # What the behaviour below rests on, in the configuration Ray generated on the head.
    code, config = cluster.project.sh(cluster.head, f"cat {RAY_HAPROXY_CONFIG_DIR}*/haproxy.cfg")
    assert code == 0, config
    assert "option idle-close-on-response" in config
    assert f"timeout http-keep-alive {SERVE_KEEP_ALIVE_S}s" in config
    hard_stop = re.search(r"hard-stop-after (\d+)s", config)
    assert hard_stop and int(hard_stop.group(1)) >= SERVE_KEEP_ALIVE_S + 25, config[:2000]
    host, port = cluster.base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    channel = grpc_channel(cluster)
    try:
        status, connection, _, _ = _request(conn, "/slow?seconds=0")
        assert status == 200 and (connection or "").lower() != "close"
        stub = demo_pb2_grpc.GreeterStub(channel)
        first = stub.SayHello(demo_pb2.HelloRequest(name="before"), metadata=METADATA, timeout=10)
        assert first.app == SLOW_APP
        before = {p for p, _, _ in ray_haproxy_procs(cluster, cluster.head)}

        # A reload: both connections now sit idle on an HAProxy process that soft-stops.
        pickup = scale_slow(cluster, 3)
        after = {p for p, _, _ in ray_haproxy_procs(cluster, cluster.head)}
        assert after - before, "no new HAProxy process: the scaling did not reload HAProxy"
        reloaded_at = time.monotonic()
        time.sleep(5)

        # The next request on the old connection: a long one, begun well after the reload. With
        # the former compose setting (hard-stop-after 20 s) HAProxy cut it after ~15 s.
        gstream = stub.SayHelloStream(
            demo_pb2.HelloStreamRequest(name="late", count=25, interval_ms=1000),
            metadata=METADATA,
            timeout=90,
        )
        status, connection, body, took = _request(conn, "/slow?seconds=25")
        indices = [reply.index for reply in gstream]
        note(
            f"\nkeep-alive connection idle across a reload (HAProxy listed 3 replicas after"
            f" {pickup:.1f}s): its next request, sent"
            f" {time.monotonic() - reloaded_at - took:.1f}s after, answered {status} in"
            f" {took:.1f}s with Connection: {connection}; a gRPC stream on the idle channel"
            f" got {len(indices)}/25 messages ({gstream.code()})"
        )
        assert status == 200 and body.get("slept") == 25 and body.get("app") == SLOW_APP
        assert gstream.code() == grpc.StatusCode.OK and indices == list(range(1, 26))
        if (connection or "").lower() == "close":
            conn.close()  # the old process said it will not take another request
        status, _, _, _ = _request(conn, "/slow?seconds=0")  # reconnects if it was closed
        assert status == 200
    finally:
        conn.close()
        channel.close()
    scale_slow(cluster, 2)
