"""Logs that cannot fill a disk.

- Every container's Docker log (where HAProxy's access log goes) is rotated: compose.yaml's
  json-file max-size and max-file, on every service.
- HAProxy's per-process stdout/stderr files stay bounded over a hundred reloads under load:
  Ray's HAProxyManager starts a new HAProxy (and a new file pair) on every reload, keeps the
  pairs of the ten latest exited ones and deletes older ones; run-ray removes the per-node
  directories of earlier Rays in the container but the newest (unit-tested), so at most two
  node directories exist.

Reloads are driven through Ray, as cheaply as it goes: the head's HAProxyManager actor's own
reload method, called from a driver in the head container (Ray 2.60's private API, test only).
"""

from __future__ import annotations

import json
import time

import pytest

from .cluster import APPS, Cluster, note
from .load import Load, summarize

pytestmark = pytest.mark.integration

# Ten times the pairs Ray keeps: without its bound the last 90 reloads would each leave one more.
RELOADS = 100
CONCURRENCY = 8
# Ray keeps this many exited pairs (HAProxyApi._max_retained_logs in Ray 2.60), plus the pairs
# of the running HAProxy processes: the live one and those draining after a reload.
RAY_RETAINED_PAIRS = 10
MAX_NODE_DIR_BYTES = 2_000_000
COMPOSE_LOGGING = {"Type": "json-file", "Config": {"max-size": "50m", "max-file": "4"}}

RELOAD_SCRIPT = r"""
import json, os, sys, time
import ray

n, base = int(sys.argv[1]), sys.argv[2]
ray.init(address="auto", namespace="serve", logging_level="ERROR", log_to_driver=False)
node_id = ray.get_runtime_context().get_node_id()
node_dir = os.path.join(base, node_id)
manager = ray.get_actor(f"SERVE_PROXY_ACTOR-{node_id}", namespace="serve")

def pairs():
    names = os.listdir(node_dir)
    err = sum(1 for f in names if f.endswith(".stderr.log"))
    return err, sum(1 for f in names if f.endswith(".stdout.log"))

def haproxies():
    found = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found += f.read().split(b"\0")[0].endswith(b"/haproxy")
        except OSError:
            pass
    return found

most_pairs, most_haproxies, t = 0, 0, time.monotonic()
for i in range(n):
    ray.get(manager._reload_haproxy.remote())
    err, out = pairs()
    most_pairs = max(most_pairs, err, out)
    most_haproxies = max(most_haproxies, haproxies())
elapsed = time.monotonic() - t
time.sleep(3)  # the last predecessor finishes draining
files = sorted(os.listdir(node_dir))
print(json.dumps({
    "reloads": n,
    "seconds": round(elapsed, 1),
    "most_pairs": most_pairs,
    "most_haproxies": most_haproxies,
    "final_pairs": sum(1 for f in files if f.endswith(".stderr.log")),
    "node_dir_bytes": sum(os.path.getsize(os.path.join(node_dir, f)) for f in files
                          if os.path.isfile(os.path.join(node_dir, f))),
    "node_dirs": sorted(d for d in os.listdir(base) if len(d) == 56),
}))
"""


def test_every_service_rotates_its_docker_log(cluster: Cluster) -> None:
    containers = cluster.project.containers()
    services = {c.labels["com.docker.compose.service"] for c in containers}
    assert {"head", "worker"} <= services, services
    for container in containers:
        config = container.attrs["HostConfig"]["LogConfig"]
        assert config == COMPOSE_LOGGING, (container.name, config)


def test_haproxy_files_stay_bounded_over_a_hundred_reloads_under_load(cluster: Cluster) -> None:
    cluster.wait_serving(timeout_s=300)
    urls = {f"{cluster.base_url}{prefix}": app for app, prefix in APPS.items()}
    started = time.monotonic()
    with Load(urls, concurrency=CONCURRENCY, max_duration_s=600) as load:
        time.sleep(2)
        code, out = cluster.exec_head(
            ["python", "-c", RELOAD_SCRIPT, str(RELOADS), "/tmp/haproxy-serve"]
        )
    assert code == 0, out[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    samples = load.snapshot()
    failed = [s for s in samples if not s.ok]
    note(
        f"\n{result['reloads']} HAProxy reloads in {result['seconds']}s under load "
        f"({time.monotonic() - started:.0f}s in all): at most {result['most_pairs']} "
        f"stdout/stderr pairs and {result['most_haproxies']} haproxy processes at once; "
        f"{result['final_pairs']} pairs ({result['node_dir_bytes']} bytes) left; "
        f"node directories: {len(result['node_dirs'])}"
    )
    note(f"load during the reloads: {summarize(samples, load.stopped_at - load.started_at)}")
    if failed:
        print(f"failed (first 10): {[(s.outcome, s.detail[:80]) for s in failed[:10]]}")
    # Without the bound every reload would have left one more pair: RELOADS of them.
    assert result["most_pairs"] <= RAY_RETAINED_PAIRS + result["most_haproxies"] + 1, result
    assert result["final_pairs"] <= RAY_RETAINED_PAIRS + 2, result
    assert result["node_dir_bytes"] < MAX_NODE_DIR_BYTES, result
    assert 1 <= len(result["node_dirs"]) <= 2, result
    # The load really ran through the reloads, and reloads are seamless (-x socket transfer).
    assert len(samples) > RELOADS
    assert len(failed) <= 0.001 * len(samples), [s.outcome for s in failed[:20]]
