"""The KubeRay head's probes, timed in the image under the head's own resources.

Runs the image as KubeRay runs it (the manifest's args `kuberay` around KubeRay's generated
`ray start`, with the env KubeRay gives the pod: tests/kuberay/kuberay_pods.py), limited to the
Ray container's CPU *request* (what the pod is guaranteed) and memory limit, then measures how
long Ray takes until the liveness probe passes and how long each probe command runs. Asserts the
manifest's startup budget and timeoutSeconds leave at least twice the measured time.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from kuberay.kuberay_pods import GCS_STORAGE_MOUNT_PATH, build
from kuberay.test_manifests import (
    CLUSTER_DOCS,
    PODS,
    SECRET_TOKEN,
    cluster_spec,
    cpu_cores,
    memory_bytes,
)

from .conftest import IMAGE

pytestmark = pytest.mark.image

MARGIN = 2.0
PROBE_RUNS = 3
HEAD = next(p for p in PODS if p.is_head and not p.is_rayservice)


@pytest.fixture
def kuberay_head(docker_client: docker.DockerClient) -> Iterator[Container]:
    resources = HEAD.ray["resources"]
    spec = next(cluster_spec(doc) for name, doc in CLUSTER_DOCS if name == HEAD.manifest)
    secret = spec["authOptions"]["secretName"]
    run = build(
        HEAD,
        cluster_spec=spec,
        secrets={f"{secret}/auth_token": SECRET_TOKEN},
        cluster=HEAD.owner.split("/", 1)[1],
        pod_name="probe-head",
    )
    # Docker hosts may cap a container's open files below what the manifests' MAXCONN 20000
    # needs (20000 on the machines this is developed on, which also refuse --ulimit above it),
    # and the runtime would then refuse the setting: fit it to the cap. The probes' timing does
    # not depend on it.
    env = {**run.env, "RAY_SERVE_HAPROXY_MAXCONN": "4096"}
    container = docker_client.containers.run(
        IMAGE,
        entrypoint=run.command,
        command=run.args,
        environment=env,
        detach=True,
        shm_size="512m",
        tmpfs={GCS_STORAGE_MOUNT_PATH: "mode=1777"},  # the PVC, writable through fsGroup
        nano_cpus=int(cpu_cores(resources["requests"]["cpu"]) * 1e9),
        mem_limit=memory_bytes(resources["limits"]["memory"]),
        healthcheck={"test": ["NONE"]},
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def timed_exec(container: Container, command: list[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    code, output = container.exec_run(command)
    return int(code), time.monotonic() - started, output.decode(errors="replace")


def test_probes_fit_the_head_request(kuberay_head: Container) -> None:
    ray: dict[str, Any] = HEAD.ray
    startup = ray["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    liveness = startup["exec"]["command"]
    started = time.monotonic()
    code, output = 1, ""
    while time.monotonic() - started < budget:
        code, _, output = timed_exec(kuberay_head, liveness)
        if code == 0:
            break
        time.sleep(1)
    up_after = time.monotonic() - started
    logs = kuberay_head.logs().decode(errors="replace")
    assert code == 0, f"liveness never passed within {budget}s: {output}\n{logs[-3000:]}"
    print(
        f"\n[image] KubeRay head ({ray['resources']['requests']['cpu']} CPU request): liveness "
        f"after {up_after:.1f}s; startupProbe budget {budget}s"
    )
    assert up_after * MARGIN <= budget, f"start {up_after:.1f}s too close to the budget {budget}s"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = ray[kind]
        command = probe["exec"]["command"]
        took = max(timed_exec(kuberay_head, command)[1] for _ in range(PROBE_RUNS))
        timeout = probe["timeoutSeconds"]
        print(f"[image] {kind} `{shlex.join(command)}`: {took:.2f}s (timeout {timeout}s)")
        assert took * MARGIN <= timeout, f"{kind} took {took:.2f}s"
