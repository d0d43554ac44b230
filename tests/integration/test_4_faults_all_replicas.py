"""A node that holds every replica of an application dies: requests to it are answered within
RSH_NO_REPLICA_TIMEOUT_S (fallback_bound.py), a 503 with Retry-After, instead of being held by
Serve's fallback proxy until replicas return.

The demo spreads every app over the workers (max_replicas_per_node: 1), so this test deploys an
app of its own, `pinned`, whose two replicas must run on one worker (Ray's `node:<ip>` resource),
on a worker added for it (so that the demo's replicas stay where they are), and kills that worker
under load. The replicas can never return (their node is gone), which is the longest wait there
is. Runs after test_4_faults (which leaves two workers) and leaves three running, as test_5
expects.

Bounded: every request sent EARLY_S or more after the kill, when HAProxy has taken the dead
replicas out, is answered within the bound plus MARGIN_S. Not bounded, and printed: requests
that were on their way in the first moments and reached the fallback on a retry (HAProxy sets
the timeout when the request arrives, not when it is retried).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from .cluster import Cluster, note, wait_for
from .load import LoadLoop, PerCall, Sample

pytestmark = pytest.mark.integration

APP = "pinned"
ROUTE = f"/{APP}"
BOUND_S = 10  # RSH_NO_REPLICA_TIMEOUT_S's default, which compose keeps
RETRY_AFTER = "5"  # fallback_bound.RETRY_AFTER_S
MARGIN_S = 2.0
EARLY_S = 3.0
AFTER_KILL_S = 25
CLIENTS = 8
# Well above the bound: a request still unanswered when this runs out was held (not bounded).
CLIENT_TIMEOUT_S = (3.0, 20.0)


def _pinned_config(cluster: Cluster, ip: str) -> dict[str, Any]:
    config = cluster.serve_config()
    app = {
        "name": APP,
        "route_prefix": ROUTE,
        "import_path": "demo_app:hello_app",
        "deployments": [
            {
                "name": "Hello",
                "num_replicas": 2,
                "max_ongoing_requests": 64,
                "ray_actor_options": {"num_cpus": 0.1, "resources": {f"node:{ip}": 0.01}},
            }
        ],
    }
    return {**config, "applications": [*config["applications"], app]}


class PinnedLoad(LoadLoop):
    """GET /pinned through the entry, with a client timeout well above the bound; a Sample's
    outcome is the status (or the exception), its detail the Retry-After header."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            self._calls,
            concurrency=CLIENTS,
            max_duration_s=300,
            join_timeout_s=sum(CLIENT_TIMEOUT_S) + 5,
        )

    @contextmanager
    def _calls(self, index: int) -> Iterator[PerCall]:
        session = requests.Session()

        def call(n: int) -> Sample:
            nonlocal session
            start = time.monotonic()
            try:
                response = session.get(self.url, timeout=CLIENT_TIMEOUT_S)
            except requests.RequestException as exc:
                session.close()
                session = requests.Session()
                return Sample(start, time.monotonic() - start, False, type(exc).__name__)
            ok = response.status_code == 200
            node = response.json().get("node_ip") if ok else None
            retry_after = response.headers.get("Retry-After", "")
            if not ok:
                time.sleep(0.2)  # a client that was told to come back later
            return Sample(
                start,
                time.monotonic() - start,
                ok,
                str(response.status_code),
                APP,
                node,
                retry_after,
            )

        try:
            yield call
        finally:
            session.close()


def test_node_holding_every_replica_of_an_app_dies(cluster: Cluster) -> None:
    cluster.project.up("--scale", "worker=4")
    holding = {
        row["addr"].rsplit(":", 1)[0] for rows in cluster.replica_servers().values() for row in rows
    }
    idle = [w for w in cluster.workers() if w.ip not in holding]
    assert idle, f"no worker without replicas among {[w.ip for w in cluster.workers()]}"
    victim = idle[-1]
    demo = cluster.serve_config()
    try:
        cluster.deploy(_pinned_config(cluster, victim.ip))

        def both_on_victim() -> bool:
            rows = cluster.replica_servers().get(f"http-{APP}", [])
            return len(rows) == 2 and all(
                r["status"] == "UP" and r["addr"].startswith(f"{victim.ip}:") for r in rows
            )

        wait_for(f"{APP}'s two replicas UP on {victim.ip}", both_on_victim, timeout_s=120)
        # Every node's HAProxy routes the new app (one that has not yet answers 404).
        # The head's among them; not necessarily the victim's yet: Serve starts a node's
        # HAProxyManager after its replicas (CI on c05ecfc: both replicas UP on a new worker
        # that had no managed HAProxy yet).
        nodes = cluster.managed_nodes()
        for container in nodes:
            node_url = cluster.node_url(container, ROUTE)
            wait_for(
                f"{node_url} answering",
                lambda url=node_url: requests.get(url, timeout=5).status_code == 200,
                timeout_s=60,
            )
        note(f"\n{APP}: both replicas on {victim.name} ({victim.ip}); killing it under load")
        # Clients through the kill (some of theirs may hang: printed, not bounded), and, from
        # EARLY_S after it, clients of their own, which no hanging request can hold up.
        url = cluster.base_url + ROUTE
        with PinnedLoad(url) as through:
            time.sleep(3)
            killed_at = time.monotonic()
            victim.container.kill()
            time.sleep(EARLY_S)
            with PinnedLoad(url) as after:
                time.sleep(AFTER_KILL_S)
        samples = through.snapshot()
        later = after.snapshot()
    finally:
        cluster.deploy(demo)
    before = [s for s in samples if s.end < killed_at]
    early = [s for s in samples if s.end >= killed_at]
    slowest = max((s.duration for s in later), default=0.0)
    slowest_early = max((s.duration for s in early), default=0.0)

    def outcomes(chosen: list[Sample]) -> str:
        return repr(dict(Counter(s.outcome for s in chosen)))

    note(
        f"  before the kill: {len(before)} requests {outcomes(before)}; in flight at the kill or "
        f"sent by the same clients after it: {len(early)} {outcomes(early)}, slowest "
        f"{slowest_early:.2f}s; sent from {EARLY_S:g} s on: {len(later)} "
        f"{outcomes(later)}, slowest {slowest:.2f}s (bound {BOUND_S} s + {MARGIN_S:g})"
    )
    # Before the kill everything answers; a rare 404 is tolerated (two runs saw 2 of 437 and
    # 1 of 882 although every node's HAProxy had answered the route: not investigated; one
    # guess is an old HAProxy process serving a kept-alive connection's last request with the
    # routes it had before the app existed).
    unexpected = [s for s in before if not s.ok and s.outcome != "404"]
    assert len(before) > 100 and not unexpected, outcomes(before)
    assert sum(s.outcome == "404" for s in before) <= len(before) // 100, outcomes(before)
    assert len(later) > 10, outcomes(later)
    # Never held: each answered within the bound, a 503 that says when to come back.
    too_slow = [f"{s.outcome} {s.duration:.2f}s" for s in later if s.duration > BOUND_S + MARGIN_S]
    assert not too_slow, f"{len(too_slow)} of {len(later)} over the bound: {too_slow[:10]}"
    answered = [s for s in later if s.outcome == "503"]
    assert len(answered) == len(later), outcomes(later)
    assert {s.detail for s in answered} == {RETRY_AFTER}, {s.detail for s in answered}
    # The demo's own apps were never touched; three workers remain for test_5.
    assert len(cluster.workers()) == 3
    wait_for("the demo serving", cluster.serving, timeout_s=60)
