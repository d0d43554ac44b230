"""The examples' pods run as KubeRay 1.7.0 would run them, without Kubernetes.

kuberay_pods.py turns the RayCluster's pod templates into what KubeRay would run (command,
args, env with what KubeRay injects and the token from the Secret, probes, preStop); Docker
runs the head and one worker from them on a network where the head Service's name (and its
FQDN) resolves to the head, as the image, user, CPU and memory limits, /dev/shm and GCS volume
of the pod say. The kubelet's part is played by the test: it runs the probe commands with
`docker exec`, runs the preStop hook before stopping a pod, and deploys the demo through the
head's dashboard as `serve deploy` (or KubeRay, for a RayService) does.

Asserted: the cluster forms; readiness is false on both pods before any application and true
after (so a Service sends nothing to a pod before its HAProxy has routes); the demo answers
through every pod's HAProxy; a worker's preStop drain lets requests in flight finish and stops
the pod within its grace period; bad settings stop a pod at once with exit 2 and the setting
named. Not here (only a Kubernetes cluster can show them): Services and their endpoints
following readiness, KubeRay's own reconciling (serveConfigV2 updates, new-cluster upgrades).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from .kuberay_pods import GCS_STORAGE_MOUNT_PATH, PodRun, build
from .test_manifests import CLUSTER_DOCS, PODS, REPO, Pod, cluster_spec, cpu_cores, memory_bytes

IMAGE = os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest")
PREFIX = "rshkuberay"
MANIFEST = "raycluster.yaml"
DEMO_CONFIG = REPO / "examples" / "demo" / "serve_config.yaml"
# This machine's Docker caps a container's open files at 20000 and refuses --ulimit above it;
# the runtime checks MAXCONN against that limit (a pod gets KubeRay's 65536). The only env the
# test changes, and the test's one deviation from the pod.
MAXCONN_FOR_THIS_HOST = "4096"
FORM_TIMEOUT_S = 120
READY_TIMEOUT_S = 180


def the_pods(manifest: str) -> list[Pod]:
    return [pod for pod in PODS if pod.manifest == manifest]


def spec_of(pod: Pod) -> dict[str, Any]:
    for name, doc in CLUSTER_DOCS:
        if name == pod.manifest and f"{doc['kind']}/{doc['metadata']['name']}" == pod.owner:
            return cluster_spec(doc)
    raise AssertionError(f"no custom resource for {pod}")


def runs(manifest: str, token: str) -> list[PodRun]:
    result = []
    for index, pod in enumerate(the_pods(manifest)):
        spec = spec_of(pod)
        cluster = pod.owner.split("/", 1)[1]
        secret = (spec.get("authOptions") or {}).get("secretName", cluster)
        name = f"{cluster}-head" if pod.is_head else f"{cluster}-{pod.group}-worker-{index}"
        result.append(
            build(
                pod,
                cluster_spec=spec,
                secrets={f"{secret}/auth_token": token},
                cluster=cluster,
                pod_name=name,
            )
        )
    return result


# --------------------------------------------------------------------------------------------
# The generator, checked without Docker


@pytest.mark.unit
@pytest.mark.parametrize("manifest", ["raycluster.yaml", "rayservice.yaml"])
def test_kuberay_would_run_the_runtime(manifest: str) -> None:
    for run in runs(manifest, "t" * 64):
        where = f"{manifest} {run.role}"
        # The annotation keeps the image's entrypoint; its runtime gets KubeRay's command.
        assert run.command is None and run.args == ["kuberay"], f"{where}: {run.command} {run.args}"
        generated = run.env["KUBERAY_GEN_RAY_START_CMD"]
        assert generated.startswith("ray start --head " if run.role == "head" else "ray start ")
        assert " --block " in generated and " --dashboard-agent-listen-port=52365 " in generated
        assert " --metrics-export-port=8080 " in generated, where
        if run.role == "head":
            assert " --num-cpus=0 " in generated and " --dashboard-host=0.0.0.0 " in generated
            assert run.env["RAY_gcs_storage_path"] == GCS_STORAGE_MOUNT_PATH, where
            assert run.env["RAY_ADDRESS"] == "127.0.0.1:6379", where
        else:
            address = f"{run.head_service}.default.svc.cluster.local:6379"
            assert f" --address={address} " in generated, where
            # 2 CPUs and 4Gi from the container's limits (generateRayStartCommand).
            assert " --num-cpus=2 " in generated and " --memory=4294967296 " in generated
            assert run.env["RAY_gcs_rpc_server_reconnect_timeout_s"] == "600", where
        assert run.env["RAY_AUTH_MODE"] == "token" and run.env["RAY_AUTH_TOKEN"] == "t" * 64
        # Every probe is the manifest's, so KubeRay injects none (no wget probe on :8000).
        assert set(run.probes) == {"startupProbe", "livenessProbe", "readinessProbe"}, where
        assert run.pre_stop == ["ray-serve-haproxy", "drain"], where
        if manifest == "rayservice.yaml":
            assert run.env["RAY_SERVE_KV_TIMEOUT_S"] == "5", where


# --------------------------------------------------------------------------------------------
# Docker


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    client = docker.from_env()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {IMAGE} not built (scripts/build-image.sh)")
    yield client
    client.close()


class Cluster:
    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.token = token
        self.runs = runs(MANIFEST, token)
        self.network = client.networks.create(f"{PREFIX}-{secrets.token_hex(3)}")
        self.containers: dict[str, Any] = {}

    def create(self, run: PodRun, extra_env: dict[str, str] | None = None) -> Any:
        limits = run.pod.ray["resources"]["limits"]
        env = {**run.env, "RAY_SERVE_HAPROXY_MAXCONN": MAXCONN_FOR_THIS_HOST, **(extra_env or {})}
        security = run.pod.spec["securityContext"]
        tmpfs = {}
        if GCS_STORAGE_MOUNT_PATH in run.volumes:  # the PVC, writable through fsGroup
            tmpfs[GCS_STORAGE_MOUNT_PATH] = "mode=1777"
        container = self.client.containers.create(
            IMAGE,
            entrypoint=run.command,
            command=run.args,
            environment=env,
            name=f"{self.network.name}-{run.name}",
            hostname=run.name,
            user=f"{security['runAsUser']}:{security['runAsGroup']}",
            group_add=[str(security["fsGroup"])],
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            shm_size="1g",  # the memory-backed emptyDir KubeRay mounts on /dev/shm
            tmpfs=tmpfs,
            nano_cpus=int(cpu_cores(limits["cpu"]) * 1e9),
            mem_limit=memory_bytes(limits["memory"]),
            healthcheck={"test": ["NONE"]},  # the kubelet runs the manifest's probes, not this
            network=self.network.name,
        )
        aliases = [run.name]
        if run.role == "head":  # the head Service, by name and FQDN (a headless Service's DNS)
            aliases += [run.head_service, f"{run.head_service}.default.svc.cluster.local"]
        self.network.disconnect(container)
        self.network.connect(container, aliases=aliases)
        self.containers[container.name] = container
        return container

    def ip(self, container: Any) -> str:
        container.reload()
        return str(container.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"])

    def remove(self) -> None:
        for container in self.containers.values():
            with contextlib.suppress(Exception):  # cleanup must reach the network
                container.remove(force=True)
        self.network.remove()


@pytest.fixture(scope="module")
def cluster(docker_client: Any) -> Iterator[Cluster]:
    made = Cluster(docker_client, secrets.token_hex(32))
    try:
        yield made
    finally:
        made.remove()


def exec_probe(container: Any, command: list[str]) -> tuple[int, str]:
    code, output = container.exec_run(command)
    return int(code), output.decode(errors="replace").strip()


def logs(container: Any, lines: int = 40) -> str:
    return container.logs(tail=lines).decode(errors="replace")


def wait_for(what: str, check: Any, timeout_s: float, containers: list[Any]) -> float:
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout_s:
        ok, last = check()
        if ok:
            return time.monotonic() - started
        time.sleep(2)
    tails = "\n".join(f"--- {c.name}\n{logs(c)}" for c in containers)
    pytest.fail(f"{what} not within {timeout_s}s; last: {last}\n{tails}")


@pytest.mark.image
@pytest.mark.parametrize(
    ("extra_env", "named"),
    [
        (
            {"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "soon"},
            "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S='soon'",
        ),
        # A runtime setting that KubeRay's command decides otherwise (rayStartParams num-cpus 0).
        ({"RSH_NUM_CPUS": "2"}, "RSH_NUM_CPUS='2': KubeRay's command says --num-cpus=0"),
    ],
)
def test_bad_settings_stop_the_pod(cluster: Cluster, extra_env: dict[str, str], named: str) -> None:
    head = next(run for run in cluster.runs if run.role == "head")
    container = cluster.create(head, extra_env)
    try:
        container.start()
        status = container.wait(timeout=60)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
        cluster.containers.pop(container.name, None)
    assert status["StatusCode"] == 2, f"exit {status['StatusCode']}: {output}"
    assert named in output, output
    assert "nothing was started" in output, output
    assert "starting: " not in output, f"Ray was started: {output}"


def demo_config() -> dict[str, Any]:
    """The demo as the docs deploy it, one replica per deployment: one worker here."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["http_options"] = {"host": "0.0.0.0", "port": 8000}
    for app in config["applications"]:
        for deployment in app.get("deployments", []):
            deployment["num_replicas"] = 1
    return config


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=kwargs.pop("timeout", 10), **kwargs)


def processes(container: Any) -> list[tuple[int, str]]:
    """(pid, command line) of every process in the container, from /proc."""
    script = (
        'for p in /proc/[0-9]*; do printf "%s %s\\n" "${p#/proc/}" '
        '"$(tr "\\0" " " < "$p/cmdline" 2>/dev/null)"; done'
    )
    _, out = exec_probe(container, ["sh", "-c", script])
    found = []
    for line in out.splitlines():
        pid, _, args = line.partition(" ")
        if pid.isdigit():
            found.append((int(pid), args.strip()))
    return found


def managers(container: Any) -> list[int]:
    return [pid for pid, args in processes(container) if args.startswith("ray::HAProxyManager")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def takeover_under_load(worker: Any, url: str, give_up_s: float = 90) -> str:
    """kill -9 of the worker's HAProxyManager while 4 clients send requests to its HAProxy,
    until Serve's next manager took the old HAProxy over (run-ray's log says so) and 5 s more.
    Returns a summary; fails on any failed request."""
    (manager,) = managers(worker)
    stop = time.monotonic() + give_up_s
    done_at: list[float] = []
    latencies: list[float] = []
    failures: list[str] = []

    def client() -> None:
        while time.monotonic() < (done_at[0] if done_at else stop):
            started = time.monotonic()
            try:
                status = get(url, timeout=10).status_code
                if status != 200:
                    failures.append(str(status))
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)
            latencies.append(time.monotonic() - started)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client) for _ in range(4)]
        time.sleep(2)
        killed_at = time.monotonic()
        code, out = exec_probe(worker, ["kill", "-KILL", str(manager)])
        assert code == 0, out
        taken_over_s = None
        while time.monotonic() < stop:
            new = [pid for pid in managers(worker) if pid != manager]
            if new and "whose HAProxyManager died: taken over" in logs(worker, 100000):
                taken_over_s = time.monotonic() - killed_at
                break
            time.sleep(1)
        done_at.append(time.monotonic() + 5)
        for future in clients:
            future.result()
    assert taken_over_s is not None, f"no takeover within {give_up_s}s:\n{logs(worker, 80)}"
    summary = (
        f"{len(latencies)} requests, {len(failures)} failed; p50 "
        f"{percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f}"
        f" ms, max {max(latencies) * 1000:.0f} ms; taken over {taken_over_s:.0f}s after the kill"
    )
    assert not failures, f"HAProxyManager crash: {summary}: {failures[:10]}"
    return summary


@pytest.mark.image
def test_pods_run_as_kuberay_runs_them(cluster: Cluster) -> None:
    t0 = time.monotonic()
    head_run = next(run for run in cluster.runs if run.role == "head")
    worker_run = next(run for run in cluster.runs if run.role == "worker")
    head = cluster.create(head_run)
    worker = cluster.create(worker_run)
    head.start()
    worker.start()
    both = [head, worker]

    # Startup probes: Ray's daemons run on both pods; the worker joined the head by its Service
    # name (the head's GCS lists two alive nodes).
    for container, run in ((head, head_run), (worker, worker_run)):

        def live(c: Any = container, r: PodRun = run) -> tuple[bool, str]:
            code, out = exec_probe(c, r.probes["startupProbe"])
            return code == 0, out

        wait_for(f"{run.name} startupProbe", live, FORM_TIMEOUT_S, both)
    head_ip, worker_ip = cluster.ip(head), cluster.ip(worker)
    auth = {"Authorization": f"Bearer {cluster.token}"}
    dashboard = f"http://{head_ip}:8265"

    count_nodes = [
        "python",
        "-c",
        "import ray; ray.init(); print('ALIVE_NODES=%d' % sum(n['Alive'] for n in ray.nodes()))",
    ]

    def two_nodes() -> tuple[bool, str]:
        code, out = exec_probe(head, count_nodes)
        return code == 0 and "ALIVE_NODES=2" in out, out[-300:]

    formed_s = wait_for("a cluster of 2 nodes", two_nodes, FORM_TIMEOUT_S, both)
    # What runs is the runtime, around KubeRay's command.
    head_log = logs(head, 400)
    assert "from KUBERAY_GEN_RAY_START_CMD" in head_log, head_log
    processes = exec_probe(head, ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])[1]
    assert "supervisord" in processes and "run-ray" in processes, processes[-500:]

    # Readiness before any application: no pod is ready (no HAProxy routes anywhere).
    for container, run in ((head, head_run), (worker, worker_run)):
        code, out = exec_probe(container, run.probes["readinessProbe"])
        assert code == 1, f"{run.name} ready before any application: {out}"

    response = requests.put(
        f"{dashboard}/api/serve/applications/", json=demo_config(), headers=auth, timeout=30
    )
    assert response.status_code == 200, f"deploy: {response.status_code} {response.text[:300]}"
    deployed_at = time.monotonic()
    for container, run in ((head, head_run), (worker, worker_run)):

        def ready(c: Any = container, r: PodRun = run) -> tuple[bool, str]:
            code, out = exec_probe(c, r.probes["readinessProbe"])
            return code == 0, out

        wait_for(f"{run.name} readinessProbe", ready, READY_TIMEOUT_S, both)
    ready_s = time.monotonic() - deployed_at

    # The demo through every pod's HAProxy; the replicas are on the worker.
    for name, ip in (("head", head_ip), ("worker", worker_ip)):
        answers = [get(f"http://{ip}:8000/hello") for _ in range(20)]
        bad = [r.status_code for r in answers if r.status_code != 200]
        assert not bad, f"{name}'s HAProxy: {len(bad)} of 20 failed: {bad}"
        node_ips = {r.json()["node_ip"] for r in answers}
        assert node_ips == {worker_ip}, f"{name}'s HAProxy answered from {node_ips}"
        echo = requests.post(f"http://{ip}:8000/echo/x", json={"a": 1}, timeout=10)
        assert echo.status_code == 200, f"{name}: echo {echo.status_code}"

    # A crashed HAProxyManager on the worker: its HAProxy serves on (the launcher), the next
    # manager takes it over (run-ray's orphan watch): no request to that pod fails.
    takeover = takeover_under_load(worker, f"http://{worker_ip}:8000/hello")

    # preStop on the worker while slow requests are in flight through its HAProxy, then the
    # kubelet's SIGTERM: the requests finish, the pod stops within its grace period.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        inflight = [
            pool.submit(get, f"http://{worker_ip}:8000/slow?seconds=3", timeout=30)
            for _ in range(8)
        ]
        time.sleep(1)
        drain_started = time.monotonic()
        code, out = exec_probe(worker, worker_run.pre_stop)
        drain_s = time.monotonic() - drain_started
        results = []
        for future in inflight:
            try:
                results.append(future.result().status_code)
            except requests.RequestException as exc:
                results.append(type(exc).__name__)
    assert code == 0, f"preStop exit {code}: {out}\n{logs(worker)}"
    failed = [r for r in results if r != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests in flight failed: {failed}"
    stop_started = time.monotonic()
    worker.stop(timeout=worker_run.grace_period_s)
    stop_s = time.monotonic() - stop_started
    assert drain_s + stop_s <= worker_run.grace_period_s, f"drain {drain_s:.1f}s + {stop_s:.1f}s"
    print(
        f"\n[contract] cluster formed in {formed_s:.0f}s; both pods ready {ready_s:.0f}s after "
        f"the deploy; 40/40 through both HAProxies; HAProxyManager kill: {takeover}; "
        f"preStop drain {drain_s:.1f}s with "
        f"{len(results)} requests in flight, 0 failed; stop after drain {stop_s:.1f}s; "
        f"total {time.monotonic() - t0:.0f}s\n[contract] the preStop hook said:\n{out}"
    )
    # Where the drain's time went: run-ray's own lines (withdraw, drain, `ray stop`), timestamped.
    stamped = worker.logs(timestamps=True).decode(errors="replace").splitlines()
    print("\n".join(line for line in stamped if "ray-serve-haproxy: " in line)[-3000:])
