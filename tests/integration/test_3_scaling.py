"""Scaling under load: while 32 clients keep HAProxy busy, both apps are redeployed with more
replicas, then fewer, then back to two. HAProxy follows each change within seconds and not one
request fails.

max_replicas_per_node is 1 in the demo config, so a third replica per app needs a third worker:
the test first scales the worker service to 3 (which also shows `--scale worker=N` joining a
running cluster). The cluster keeps three workers afterwards; the fault tests use them.
"""

from __future__ import annotations

import time

import pytest

from .cluster import APPS, Cluster, note
from .load import Load, summarize

pytestmark = pytest.mark.integration

CONCURRENCY = 32
STEPS = (("more", 3), ("fewer", 1), ("back to", 2))
# From the deploy request until the head's HAProxy lists exactly the new replicas, all UP.
# Mostly Serve's own time: starting replica actors (5-8 s measured), or, going from 1 back
# to 2, waiting for the replicas just scaled away to finish their graceful shutdown (they
# hold their node's max_replicas_per_node slot; about 30 s measured).
MAX_PICKUP_S = 90
# From Serve reporting the new set of RUNNING replicas until HAProxy has it.
MAX_LAG_S = 10


def test_scale_worker_service_to_three(cluster: Cluster) -> None:
    start = time.monotonic()
    cluster.project.up("--scale", "worker=3")
    took = time.monotonic() - start
    workers = cluster.workers()
    note(
        f"\n`docker compose up --scale worker=3 --wait`: {took:.1f}s;"
        f" workers {[w.name for w in workers]}"
    )
    assert len(workers) == 3
    assert cluster.serving()


def test_redeploy_more_then_fewer_replicas_under_load(cluster: Cluster) -> None:
    assert len(cluster.workers()) == 3, (
        "needs the third worker (test_scale_worker_service_to_three)"
    )
    urls = {f"{cluster.base_url}{prefix}": app for app, prefix in APPS.items()}
    phases: list[tuple[str, float, float, float]] = []  # (label, start, end, pickup)
    with Load(urls, concurrency=CONCURRENCY, max_duration_s=300) as load:
        time.sleep(3)
        for label, replicas in STEPS:
            expected = dict.fromkeys(APPS, replicas)
            start = time.monotonic()
            cluster.deploy(cluster.scaled_config(expected))
            serve_at = haproxy_at = None
            deadline = start + MAX_PICKUP_S + MAX_LAG_S
            while (serve_at is None or haproxy_at is None) and time.monotonic() < deadline:
                if (
                    haproxy_at is None
                    and cluster.server_counts() == expected == cluster.up_counts()
                ):
                    haproxy_at = time.monotonic()
                running = {
                    app: states["RUNNING"] for app, states in cluster.replica_states().items()
                }
                if serve_at is None and all(running.get(app) == replicas for app in APPS):
                    serve_at = time.monotonic()
                time.sleep(0.25)
            assert haproxy_at is not None, (
                f"HAProxy never showed {expected}: {cluster.server_counts()}"
            )
            assert serve_at is not None, (
                f"Serve never reported {expected}: {cluster.replica_states()}"
            )
            pickup, lag = haproxy_at - start, haproxy_at - serve_at
            note(
                f"\n{label} replicas ({replicas} per app): HAProxy lists them {pickup:.1f}s"
                " after the deploy"
                f" request, {lag:+.1f}s relative to Serve reporting them RUNNING"
            )
            assert pickup < MAX_PICKUP_S
            assert lag < MAX_LAG_S
            # The operator's view agrees: `ray-serve-haproxy status` shows the new server count.
            assert cluster.status_server_counts() == expected
            time.sleep(5)  # traffic on the new set of replicas
            phases.append((label, start, time.monotonic(), pickup))
    samples = load.snapshot()
    elapsed = load.stopped_at - load.started_at
    note(f"load during scaling ({CONCURRENCY} clients): {summarize(samples, elapsed)}")

    # Which workers answered once each change had been picked up.
    for label, start, end, pickup in phases:
        window = [s for s in samples if start + pickup <= s.start < end and s.ok]
        note(f"  {label}: {len(window)} answers from {len({s.node_ip for s in window})} workers")
    more_start, more_end, more_pickup = phases[0][1], phases[0][2], phases[0][3]
    answered_by = {s.node_ip for s in samples if more_start + more_pickup <= s.start < more_end}
    assert len(answered_by) == 3, f"with 3 replicas per app, answers came from {answered_by}"

    failed = [s for s in samples if not s.ok]
    assert len(samples) > 1000
    assert not failed, (
        f"{len(failed)} of {len(samples)} requests failed: {[s.outcome for s in failed[:20]]}"
    )
