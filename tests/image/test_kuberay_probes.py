"""The KubeRay head's probes, timed in the image under the head's own resources.

Runs the image as KubeRay runs it (its own `ray start --head --block`, the manifest's env, the
entrypoint replaced), limited to the Ray container's CPU *request* (what the pod is guaranteed)
and memory limit, then measures how long Ray takes until the liveness probe passes and how long
each probe command runs. Asserts the manifest's startup budget and timeoutSeconds leave at least
twice the measured time.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from kuberay.test_manifests import (
    PODS,
    Pod,
    cpu_cores,
    kuberay_auth_env,
    memory_bytes,
    ray_env,
)

from .conftest import IMAGE

pytestmark = pytest.mark.image

MARGIN = 2.0
PROBE_RUNS = 3
HEAD = next(p for p in PODS if p.is_head and not p.is_rayservice)


def kuberay_command(pod: Pod) -> list[str]:
    """KubeRay's head command in essence: `ray start --head` with rayStartParams, blocking."""
    params = [f"--{key}={value}" for key, value in pod.ray_start_params.items()]
    return ["ray", "start", "--head", "--block", "--disable-usage-stats", *params]


@pytest.fixture
def kuberay_head(docker_client: docker.DockerClient) -> Iterator[Container]:
    resources = HEAD.ray["resources"]
    # KubeRay starts Ray after `ulimit -n 65536`, where the manifests' MAXCONN 20000 fits. Docker
    # hosts may cap a container's open files lower (20000 on the machines this is developed on,
    # which also refuse --ulimit above it), and the probe would then refuse the setting: fit it
    # to the cap. The probes' timing does not depend on it.
    # KubeRay's authOptions adds RAY_AUTH_MODE and RAY_AUTH_TOKEN (from the Secret).
    env = {
        **ray_env(HEAD),
        **kuberay_auth_env(HEAD, HEAD.ray),
        "RAY_SERVE_HAPROXY_MAXCONN": "4096",
    }
    container = docker_client.containers.run(
        IMAGE,
        entrypoint=["/usr/bin/tini", "--"],
        command=[*kuberay_command(HEAD), "--object-store-memory=200000000"],
        environment=env,
        detach=True,
        shm_size="512m",
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
