"""The runtime as the image's entrypoint: validation, a lone head that serves, a clean stop."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
import yaml
from docker.models.containers import Container
from integration.cluster import SHOW_STAT
from ray_serve_haproxy.haproxy_stats import parse_show_stat

from .conftest import ImageRunner

pytestmark = pytest.mark.image

HEALTHZ_WITHIN_S = 60
COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def _compose_stop_settings() -> tuple[int, int]:
    """(RSH_SHUTDOWN_TIMEOUT_S, stop_grace_period in s) of the compose cluster's nodes."""
    compose = yaml.safe_load(COMPOSE.read_text())
    grace = compose["x-ray-node"]["stop_grace_period"]
    match = re.fullmatch(r"(\d+)s", grace)
    assert match, f"stop_grace_period {grace!r}: expected seconds"
    return int(compose["x-ray-env"]["RSH_SHUTDOWN_TIMEOUT_S"]), int(match.group(1))


# The lone head stops the way `docker compose stop` stops a node: the same shutdown budget and
# grace period (Docker's SIGKILL comes after it). HAProxy's hard-stop-after stays at its
# derived default (an hour and more): it must not delay the stop.
SHUTDOWN_TIMEOUT_S, STOP_GRACE_S = _compose_stop_settings()


def test_check_passes_with_the_default_environment(image_runner: ImageRunner) -> None:
    result = image_runner.run(["check", "--no-ports"], timeout_s=60)
    assert result.exit_code == 0, result.output


def test_check_names_every_bad_setting_and_fails_fast(image_runner: ImageRunner) -> None:
    bad = {
        "RAY_SERVE_HAPROXY_MAXCONN": "abc",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER": "5",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "32000",
    }
    started = time.monotonic()
    result = image_runner.run(["check"], environment=bad, timeout_s=60)
    elapsed = time.monotonic() - started
    assert result.exit_code != 0, result.output
    for name, value in bad.items():
        assert name in result.output, f"{name} not named:\n{result.output}"
        assert value in result.output
    assert elapsed < 20, f"check took {elapsed:.1f}s"


def test_head_refuses_bad_settings_before_starting_anything(image_runner: ImageRunner) -> None:
    result = image_runner.run(
        ["head"], environment={"RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER": "5"}, timeout_s=60
    )
    assert result.exit_code != 0, result.output
    assert "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER" in result.output
    assert "supervisord started" not in result.output
    assert "starting: " not in result.output, "Ray was started despite invalid settings"


# Ray 2.60's HAProxy answers /-/healthz with 503 "Route table is not populated yet" until the
# first application exists, so the lone head deploys one: the baked demo's `hello`, one replica,
# which fits on the head (it offers its CPUs here, unlike in compose).
LONE_HEAD_SERVE_CONFIG = """\
applications:
  - name: hello
    route_prefix: /hello
    import_path: demo_app:hello_app
    deployments:
      - name: Hello
        num_replicas: 1
        ray_actor_options:
          num_cpus: 0.5
  - name: slow
    route_prefix: /slow
    import_path: slow_app:slow_app
    deployments:
      - name: Slow
        num_replicas: 1
        ray_actor_options:
          num_cpus: 0.1
"""
DEMO_DIR = "/opt/ray-serve-haproxy/examples/demo"


@pytest.fixture
def lone_head(
    docker_client: docker.DockerClient, image_runner: ImageRunner, tmp_path: Path
) -> Iterator[Container]:
    serve_config = tmp_path / "serve_config.yaml"
    serve_config.write_text(LONE_HEAD_SERVE_CONFIG)
    serve_config.chmod(0o644)
    container = docker_client.containers.run(
        image_runner.image.id,
        command=["head"],
        detach=True,
        shm_size="512m",
        environment={
            "RSH_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RSH_SERVE_CONFIG": "/etc/lone-head/serve_config.yaml",
            "RSH_PYTHONPATH": DEMO_DIR,
        },
        volumes={
            str(serve_config): {"bind": "/etc/lone-head/serve_config.yaml", "mode": "ro"},
            **image_runner.token_volume,
        },
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def _host_port(container: Container) -> int:
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
    return int(bindings[0]["HostPort"])


def _processes(container: Container) -> list[str]:
    top = container.top(ps_args="-eo pid,comm")
    return [row[-1] for row in top["Processes"]]


def _backends_with_a_replica_up(container: Container) -> set[str]:
    """Backends of the node's HAProxy with a replica server UP (its `show stat`)."""
    code, out = container.exec_run(["sh", "-c", SHOW_STAT])
    assert code == 0, out
    _, backends = parse_show_stat(out.decode(errors="replace"))
    return {
        b.name
        for b in backends
        if any(s.name.startswith("SERVE_REPLICA") and s.status == "UP" for s in b.servers)
    }


def test_lone_head_serves_healthz_then_stops_cleanly(lone_head: Container) -> None:
    url = f"http://127.0.0.1:{_host_port(lone_head)}/-/healthz"
    started = time.monotonic()
    status = None
    while time.monotonic() - started < HEALTHZ_WITHIN_S:
        try:
            status = requests.get(url, timeout=2).status_code
        except requests.RequestException:
            status = None
        if status == 200:
            break
        time.sleep(1)
    took = time.monotonic() - started
    assert status == 200, f"/-/healthz not 200 within {HEALTHZ_WITHIN_S}s:\n{lone_head.logs()!r}"
    print(f"\n[image] lone head: /-/healthz 200 after {took:.1f}s")
    # /-/healthz is 200 once any application has a replica UP; each app's route follows.
    for path in ("/hello", "/slow?seconds=0"):
        answer = None
        while time.monotonic() - started < HEALTHZ_WITHIN_S:
            answer = requests.get(url.replace("/-/healthz", path), timeout=5)
            if answer.status_code == 200:
                break
            time.sleep(1)
        assert answer is not None and answer.status_code == 200, (path, answer and answer.text)
    # Those 200s may come through Serve's fallback proxy before HAProxy has checked the replicas
    # UP (rise 2 at the image's 5 s interval). A request sent then is bounded by
    # RSH_NO_REPLICA_TIMEOUT_S (10 s, a 503): the 600 s one below was, twice in CI, and the drain
    # then had nothing to wait for.
    while time.monotonic() - started < HEALTHZ_WITHIN_S:
        if {"http-hello", "http-slow"} <= _backends_with_a_replica_up(lone_head):
            break
        time.sleep(1)
    assert {"http-hello", "http-slow"} <= _backends_with_a_replica_up(lone_head)
    running = _processes(lone_head)
    assert "haproxy" in running and "raylet" in running, running

    # Requests in flight when the stop comes: one that ends within the drain (HAProxy lets it
    # finish before Ray stops), one far longer than the shutdown budget (cut, so that the
    # container still stops within the grace period).
    base = url.removesuffix("/-/healthz")
    outcomes: dict[str, str] = {}

    def call(name: str, seconds: int) -> None:
        try:
            response = requests.get(f"{base}/slow?seconds={seconds}", timeout=(5, seconds + 30))
            outcomes[name] = str(response.status_code)
        except requests.RequestException as exc:
            outcomes[name] = type(exc).__name__

    threads = [
        threading.Thread(target=call, args=("short", 6)),
        threading.Thread(target=call, args=("long", 600)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(2)

    started = time.monotonic()
    lone_head.stop(timeout=STOP_GRACE_S)
    stop_took = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    lone_head.reload()
    state = lone_head.attrs["State"]
    logs = lone_head.logs().decode(errors="replace")
    print(
        f"[image] docker stop (grace {STOP_GRACE_S}s, RSH_SHUTDOWN_TIMEOUT_S"
        f" {SHUTDOWN_TIMEOUT_S}) took {stop_took:.1f}s, exit code {state['ExitCode']};"
        f" requests in flight: {outcomes}"
    )
    # 137 would mean Docker had to SIGKILL: the graceful path did not finish in time.
    assert state["ExitCode"] in (0, 143), f"exit code {state['ExitCode']}\n{logs[-3000:]}"
    assert stop_took < STOP_GRACE_S, f"docker stop took {stop_took:.1f}s"
    assert outcomes.get("short") == "200", f"{outcomes}\n{logs[-3000:]}"
    assert outcomes.get("long") != "200", outcomes
    # run-ray logs this only after `ray stop` and the sweep for leftover HAProxy processes.
    assert "ray-serve-haproxy: Ray stopped" in logs, logs[-3000:]
    assert "still serving after" in logs, logs[-3000:]  # the drain waited, then moved on
