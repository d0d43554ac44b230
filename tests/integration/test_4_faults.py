"""Faults under load through the entry, after the non-destructive tests because they break
things on purpose.

- HAProxyManager crash (kill -9) on a worker, then on the head: the node's HAProxy outlives
  it and serves on until the manager Serve starts next takes over from it; not one HTTP request
  or gRPC call fails, and no orphaned HAProxy is left.
- node loss: `docker kill` of the worker holding the most replicas: only requests in flight to
  it may fail, every request sent 1 s or more after the kill succeeds, Serve replaces the lost
  replicas and HAProxy routes to them.
Through both, no successful request takes longer than traffic.SLOWEST_OK_S.
- Ray restarted on the head: no orphaned HAProxy is left holding the port, the head serves again.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest
import requests
from docker.models.containers import Container

from .cluster import APPS, Cluster, Proc, haproxy_by_manager, note, wait_for
from .traffic import (
    FaultReport,
    Traffic,
    run_through,
)

pytestmark = pytest.mark.integration

# A request sent this long after a worker was killed must succeed: the nodes' HAProxy give up
# connecting to its replicas after 1 s (RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S in compose) and
# retry elsewhere, and the entry after RSH_ENTRY_CONNECT_TIMEOUT (500 ms).
FULL_SERVICE_AFTER_S = 1.0
# Until Serve has started a new HAProxyManager and its HAProxy took over (about 25 s measured:
# Serve's proxy health check notices the dead actor first).
MAX_NODE_RETURN_S = 120
# run-ray's line for an old HAProxy the new manager's took over (orphan_watch.py): that one
# finishes the connections it has (like Ray's own old processes after a reload), then exits.
TAKEN_OVER = re.compile(r"soft-stopping HAProxy (\d+) whose HAProxyManager died: taken over")
# The runtime's state directory in the image (RSH_STATE_DIR default): supervisord.conf is there.
STATE_DIR = "/tmp/ray-serve-haproxy"


def _orphans(procs: list[Proc]) -> tuple[list[Proc], list[Proc]]:
    """(HAProxy processes, those whose parent is not a Ray HAProxyManager actor process)."""
    managed, orphaned = haproxy_by_manager(procs)
    return managed + orphaned, orphaned


def _managers(cluster: Cluster, container: Container) -> list[Proc]:
    return [p for p in cluster.processes(container) if p.args.startswith("ray::HAProxyManager")]


def _node(cluster: Cluster, which: str) -> Container:
    if which == "head":
        return cluster.head
    # A worker with replicas, hence with an HAProxyManager and an HAProxy.
    return next(w.container for w in cluster.workers() if _managers(cluster, w.container))


@pytest.mark.parametrize("which", ["worker", "head"])
def test_haproxy_manager_crash_under_load(
    cluster: Cluster, pb: tuple[Any, Any], which: str
) -> None:
    """kill -9 of a node's HAProxyManager actor: its HAProxy outlives it (the launcher keeps it
    out of the manager's process group) and serves on, the node normally staying in the entry;
    the manager Serve starts next takes over from it (-x/-sf) with the routes it last served:
    not one HTTP request or gRPC call fails. Afterwards the new manager's HAProxy holds the
    ports and the old one is in its soft stop. How long the node was out of the entry is
    printed."""
    container = _node(cluster, which)
    ip = cluster.project.ip(container)
    wait_for(
        f"{which} {ip} UP in the entry", lambda: ip in cluster.entry_up_addresses(), timeout_s=60
    )
    managers = _managers(cluster, container)
    assert len(managers) == 1, managers
    haproxy_before = {p.pid for p in cluster.haproxy_procs(container)}
    seen: dict[str, float] = {}  # event -> seconds after the kill
    out_of_entry: list[float] = []

    def kill() -> None:
        code, out = cluster.project.exec(container, ["kill", "-KILL", str(managers[0].pid)])
        assert code == 0, out
        seen["kill"] = time.monotonic()

    def back() -> bool:
        # A new manager, whose HAProxy took over from the old one, and the entry routing to it.
        now = time.monotonic() - seen["kill"]
        if ip not in cluster.entry_up_addresses():
            out_of_entry.append(now)
            return False
        new = _managers(cluster, container)
        if len(new) != 1 or new[0].pid == managers[0].pid:
            return False
        seen.setdefault("new manager", now)
        serving = cluster.serving_haproxy(container)
        if serving is None or serving in haproxy_before:
            return False
        seen.setdefault("taken over", now)
        stopping = _soft_stopped_orphans(container)
        if not haproxy_before <= stopping | _gone(cluster, container, haproxy_before):
            return False
        seen.setdefault("old HAProxy soft-stopped", now)
        return True

    with Traffic(cluster, pb) as traffic:
        fault = run_through(traffic, kill, until=back, steady_s=5, give_up_s=MAX_NODE_RETURN_S)
    elapsed = traffic.elapsed()
    # Whether every step was seen (back() held once): the node may leave the entry for a moment
    # around the takeover (below), so a check made again now could fail for that alone (CI on
    # 426200e: taken over and the old HAProxy soft-stopped 41.2 s after the kill, then out of
    # the entry at this line).
    returned = back() or "old HAProxy soft-stopped" in seen
    after = ", ".join(f"{k} {v:.1f}s" for k, v in seen.items() if k != "kill")
    lingering = sorted(haproxy_before - _gone(cluster, container, haproxy_before))
    note(
        f"\nkill -9 HAProxyManager on the {which} (pid {managers[0].pid}), then: {after}; old "
        f"HAProxy still finishing connections: {lingering}; out of the entry meanwhile: "
        f"{len(out_of_entry)} of the 1 s polls"
    )
    reports = traffic.reports(fault)
    for report in reports:
        assert len(report.samples) > 200, report.line(elapsed)
        assert not report.failed, report.line(elapsed)
        assert report.latency_problem() is None, report.latency_problem()
    assert returned, f"the {which}'s HAProxy was not taken over within {MAX_NODE_RETURN_S}s"
    # Not asserted: the node may leave the entry for a few seconds around the takeover (seen
    # once in CI, 7 polls); the entry then routes to the other nodes and nothing fails.

    # Left: the new manager's HAProxy, and old ones only in their soft stop.
    haproxy, orphaned = _orphans(cluster.processes(container))
    stopping = _soft_stopped_orphans(container)
    assert {p.pid for p in orphaned} <= stopping, f"orphaned HAProxy: {orphaned}"
    assert len({p.ppid for p in haproxy if p not in orphaned}) == 1
    response = requests.get(cluster.node_url(container, APPS["hello"]), timeout=10)
    assert response.status_code == 200 and response.json()["app"] == "hello"
    cluster.wait_up_counts(dict.fromkeys(APPS, 2), timeout_s=60)


def _gone(cluster: Cluster, container: Container, pids: set[int]) -> set[int]:
    return pids - {p.pid for p in cluster.haproxy_procs(container)}


def _soft_stopped_orphans(container: Container) -> set[int]:
    """Pids run-ray reports soft-stopping as taken over by a new manager's HAProxy."""
    logs = container.logs().decode(errors="replace")
    return {int(pid) for pid in TAKEN_OVER.findall(logs)}


def test_worker_loss_under_load(cluster: Cluster, pb: tuple[Any, Any]) -> None:
    workers = cluster.workers()
    assert len(workers) >= 2
    servers = cluster.replica_servers()
    on_node = Counter(row["addr"].rsplit(":", 1)[0] for rows in servers.values() for row in rows)
    victim = max(workers, key=lambda w: on_node.get(w.ip, 0))
    survivors = {w.ip for w in workers if w.ip != victim.ip}
    note(f"\nreplica servers per worker: {dict(on_node)}; killing {victim.name} ({victim.ip})")
    assert on_node[victim.ip] > 0

    with Traffic(cluster, pb) as traffic:
        fault = run_through(traffic, victim.container.kill, steady_s=15, give_up_s=120)
    elapsed = traffic.elapsed()
    reports = [FaultReport(p, s, fault) for p, s in traffic.by_protocol().items()]
    for report in reports:
        note(f"  node loss, {report.line(elapsed)}")
        if report.failed:
            timeline = ", ".join(
                f"{s.outcome} sent {s.start - fault.at:+.2f}s ended {s.end - fault.at:+.2f}s"
                for s in report.failed[:10]
            )
            print(f"  failed (first 10, relative to the kill): {timeline}")
            print(f"  first failure: {report.failed[0].detail}")
    for report in reports:
        line = report.line(elapsed)
        assert len(report.samples) > 500, line
        # Only requests on their way to the dead node when it died may fail...
        assert not report.failed_not_in_flight(), line
        assert len(report.failed) <= len(report.in_flight_at_fault), line
        # ...and full service again within a second.
        after = report.started_after(FULL_SERVICE_AFTER_S)
        assert len(after) > 200 and all(s.ok for s in after), line
        assert {s.node_ip for s in after} <= survivors, "answers from the dead node"
        # No request that succeeded was held long, not even those sent during the kill.
        assert report.latency_problem() is None, report.latency_problem()

    # Serve replaces the lost replicas on the remaining workers; HAProxy drops the dead servers.
    took = cluster.wait_up_counts(dict.fromkeys(APPS, 2), timeout_s=180)
    start = time.monotonic()

    def dead_servers_dropped() -> set[str] | None:
        # The new replicas can be UP while the dead ones are still listed (DOWN) until Serve's
        # controller gives up on the node and HAProxy reloads without them.
        addrs = {
            row["addr"].rsplit(":", 1)[0]
            for rows in cluster.replica_servers().values()
            for row in rows
        }
        return addrs if addrs <= survivors else None

    addrs = wait_for("HAProxy drops the dead worker's servers", dead_servers_dropped, timeout_s=90)
    note(
        f"  replicas replaced and routed to by HAProxy {took:.1f}s later (at {sorted(addrs)}); "
        f"the dead servers dropped {time.monotonic() - start:.1f}s after that"
    )
    wait_for(
        "the dead worker out of the entry",
        lambda: victim.ip not in cluster.entry_up_addresses(),
        timeout_s=30,
    )


def test_head_ray_restart_leaves_no_orphaned_haproxy(cluster: Cluster) -> None:
    head = cluster.head
    before = cluster.haproxy_procs()
    print(f"\nHAProxy on the head before: {[(p.pid, p.ppid) for p in before]}")
    assert before, "no HAProxy runs on the head"

    # Restart the supervised Ray program the way an operator would; run-ray soft-stops HAProxy,
    # stops Ray gracefully (`ray stop`) and makes sure no HAProxy of ours survives it.
    conf = f"{STATE_DIR}/supervisord.conf"
    start = time.monotonic()
    code, out = cluster.project.exec(head, ["supervisorctl", "-c", conf, "restart", "ray"])
    restarted = time.monotonic() - start
    note(f"`supervisorctl restart ray` ({restarted:.1f}s): {out.strip()}")
    assert code == 0, out
    procs = cluster.processes(head)
    alive = {p.pid for p in procs}
    survivors = [p for p in before if p.pid in alive]
    assert not survivors, f"HAProxy from before the restart still runs: {survivors}"
    haproxy, orphaned = _orphans(procs)
    assert not orphaned, f"HAProxy not owned by an HAProxyManager: {orphaned}"

    # Serve's start-up is a one-shot program: run it again for the new Ray.
    code, out = cluster.project.exec(head, ["supervisorctl", "-c", conf, "start", "serve-up"])
    print(f"`supervisorctl start serve-up`: {out.strip()}")

    # The GCS state is on the `gcs` volume: the restarted head recovers the cluster and Serve's
    # applications; HAProxy on the head gets its routes again.
    took = cluster.wait_serving(timeout_s=300)
    head_url = cluster.node_url(head)

    def head_serves() -> bool:
        return requests.get(f"{head_url}{APPS['hello']}", timeout=2).status_code == 200

    wait_for("the head's HAProxy serving", head_serves, timeout_s=120)
    note(
        f"head's HAProxy serving again {time.monotonic() - start:.1f}s after the restart"
        f" (cluster serving through the entry after {took:.1f}s)"
    )
    # Its own healthcheck, not Docker's status: that stays `healthy` until three probes in a
    # row failed, while serve-up (which the probe waits for) may still be running.
    checks: list[str] = []

    def head_ready() -> bool:
        code, out = cluster.project.exec(head, ["ray-serve-haproxy", "healthcheck"])
        checks.append(out.strip())
        return code == 0

    try:
        wait_for("the head's healthcheck passing", head_ready, timeout_s=180, interval_s=2)
    finally:
        print(f"the head's healthcheck, last answer: {checks[-1] if checks else '-'}")
    # And Docker's own view caught up: the restart's failed probes may have made it
    # `unhealthy` (which `compose up --wait` in later tests refuses at once) or left a failing
    # streak under a stale `healthy`; the next probe clears both.
    wait_for("Docker's status healthy again", lambda: _docker_health(head), timeout_s=60)

    haproxy, orphaned = _orphans(cluster.processes(head))
    managers = {p.ppid for p in haproxy}
    print(f"HAProxy on the head after: {[(p.pid, p.ppid) for p in haproxy]}")
    assert haproxy and not orphaned, f"orphaned HAProxy: {orphaned}"
    assert len(managers) == 1, f"HAProxy processes of several managers: {haproxy}"
    assert not {p.pid for p in haproxy} & {p.pid for p in before}

    # Every request to the head's port answers from a current replica: no stale HAProxy.
    workers = {w.ip for w in cluster.workers()}
    session = requests.Session()
    for i in range(100):
        prefix = APPS["hello"] if i % 2 else APPS["echo"]
        response = session.get(f"{head_url}{prefix}", timeout=10)
        assert response.status_code == 200, (i, response.status_code, response.text)
        assert response.json()["node_ip"] in workers


def _docker_health(container: Any) -> bool:
    """Docker's health of `container` is `healthy` and its last probe passed."""
    container.reload()
    health = container.attrs["State"].get("Health") or {}
    return health.get("Status") == "healthy" and health.get("FailingStreak") == 0
