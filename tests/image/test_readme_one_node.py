"""docs/docker-run.md "One node with `docker run`", run exactly as written, and a deploy that can
never finish.

The commands come from the block between `<!-- one-node:start -->` and `<!-- one-node:end -->` of
docs/docker-run.md, so this test and the docs cannot drift. Only what would collide with other
users of this machine is replaced: the image (RSH_IMAGE), the container name and the host ports
(free ones instead of 8000 and 9000).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import docker
import grpc
import pytest
from grpc_tools import protoc

from .conftest import IMAGE

if TYPE_CHECKING:
    from conftest import ClusterToken

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "docker-run.md"
PROTO = REPO / "examples" / "demo" / "demo.proto"
START, END = "<!-- one-node:start -->", "<!-- one-node:end -->"
DOC_IMAGE = "ray-serve-haproxy:latest"
DOC_NAME = "ray-head"
HEALTHY_WITHIN_S = 240
COMMAND_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_commands() -> list[str]:
    """The shell commands of the docs' block, continuation lines joined, comments kept."""
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC.name} lacks the {START} block"
    block = text[text.index(START) + len(START) : text.index(END)]
    match = re.search(r"```bash\n(.*?)```", block, re.S)
    assert match, "the one-node block holds no ```bash code"
    commands, pending = [], ""
    for line in match.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        if (pending + line).strip():
            commands.append(pending + line.strip())
        pending = ""
    return commands


def localize(command: str, name: str, http: int, grpc_port: int, secrets: Path) -> str:
    """The docs' command for this machine: our image, our name, free host ports, and a token
    directory of the test's own instead of the repository's `.secrets`."""
    command = command.replace(DOC_IMAGE, IMAGE)
    command = command.replace("scripts/ray-token.sh", f"scripts/ray-token.sh {secrets}")
    command = command.replace("$PWD/.secrets/", f"{secrets}/")
    command = re.sub(rf"\b{DOC_NAME}\b", name, command)
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{http}")
    return command.replace("127.0.0.1:9000", f"127.0.0.1:{grpc_port}")


def run(command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def grpc_stubs(out: Path) -> tuple[ModuleType, ModuleType]:
    argv = ["grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={out}"]
    assert protoc.main([*argv, f"--grpc_python_out={out}", str(PROTO)]) == 0
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("demo_pb2"), importlib.import_module("demo_pb2_grpc")
    finally:
        sys.path.remove(str(out))


@pytest.fixture
def container_name(docker_client: docker.DockerClient) -> Iterator[str]:
    name = f"rsh-targets-readme-{os.getpid()}"
    yield name
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.containers.get(name).remove(force=True)


def test_readme_one_node_commands_turn_healthy_and_serve_every_app(
    container_name: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    http, grpc_port = free_port(), free_port()
    secrets = tmp_path / "secrets"
    commands = [localize(c, container_name, http, grpc_port, secrets) for c in readme_commands()]
    stop_at = next(i for i, c in enumerate(commands) if c.startswith("docker stop"))
    outputs: dict[str, str] = {}
    started = time.monotonic()
    for command in commands[:stop_at]:
        waits = command.startswith("until ")
        try:
            result = run(command, HEALTHY_WITHIN_S if waits else COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logs = docker_client.containers.get(container_name).logs().decode(errors="replace")
            pytest.fail(f"`{command}` did not finish:\n{logs[-4000:]}")
        assert result.returncode == 0, f"`{command}`:\n{result.stdout}\n{result.stderr}"
        outputs[command] = result.stdout
        if waits:
            print(f"\n[image] docs one node: healthy after {time.monotonic() - started:.1f}s")
    container = docker_client.containers.get(container_name)
    container.reload()
    assert container.attrs["State"]["Health"]["Status"] == "healthy"

    # Every demo app answers: the docs' curls (hello, echo) ...
    answers = [json.loads(out) for cmd, out in outputs.items() if cmd.startswith("curl ")]
    assert {a["app"] for a in answers} == {"hello", "echo"}, answers
    # ... and gRPC on the published port (the docs point to the gRPC page for this).
    demo_pb2, demo_pb2_grpc = grpc_stubs(tmp_path)
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = demo_pb2_grpc.GreeterStub(channel)
        metadata = (("application", "greeter"),)
        reply = stub.SayHello(demo_pb2.HelloRequest(name="readme"), metadata=metadata, timeout=10)
        stream = list(
            stub.SayHelloStream(
                demo_pb2.HelloStreamRequest(name="readme", count=3), metadata=metadata, timeout=10
            )
        )
    assert "readme" in reply.message and reply.replica_id, reply
    assert [part.index for part in stream] == [1, 2, 3]
    # hello's two replicas are both HAProxy servers of this one node.
    status = next(out for cmd, out in outputs.items() if "ray-serve-haproxy status" in cmd)
    assert re.search(r"http-hello", status), status
    check = next(out for cmd, out in outputs.items() if "ray-serve-haproxy check" in cmd)
    assert "listening: tcp 8404 (RAY_SERVE_HAPROXY_STATS_PORT)" in check, check
    assert "check: OK" in check, check

    stop, *rest = commands[stop_at:]
    began = time.monotonic()
    result = run(stop)
    assert result.returncode == 0, result.stderr
    container.reload()
    print(f"[image] docs one node: docker stop took {time.monotonic() - began:.1f}s")
    state: dict[str, Any] = container.attrs["State"]
    assert state["ExitCode"] in (0, 143), state
    assert "ray-serve-haproxy: Ray stopped" in container.logs().decode(errors="replace")
    for command in rest:
        assert run(command).returncode == 0, command


# --- a config that cannot be placed, and a deploy that can never finish -------------------

DEMO_CONFIG = "/opt/ray-serve-haproxy/examples/demo/serve_config.yaml"
DEPLOY_TIMEOUT_S = 20
UNHEALTHY_WITHIN_S = 120
# The compose head: no CPUs for replicas, the compose demo, and no worker will ever join.
LONE_COMPOSE_HEAD_ENV = {
    "RSH_NUM_CPUS": "0",
    "RSH_SERVE_CONFIG": DEMO_CONFIG,
    "RSH_PYTHONPATH": "/opt/ray-serve-haproxy/examples/demo",
    "RSH_SERVE_DEPLOY_TIMEOUT_S": str(DEPLOY_TIMEOUT_S),
    "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "10",
    "RAY_USAGE_STATS_ENABLED": "0",
}
SECOND_NS = 1_000_000_000


def test_check_names_a_config_that_this_node_cannot_place(image_runner: Any) -> None:
    result = image_runner.run(["check", "--no-ports"], environment=LONE_COMPOSE_HEAD_ENV)
    assert result.exit_code == 0, result.output  # a warning: workers may still join
    line = next(x for x in result.output.splitlines() if f"placement of {DEMO_CONFIG}" in x)
    assert line.startswith("WARN"), line
    assert "cannot be placed on this node alone (1 node(s): this head (0 CPU))" in line
    assert "hello/Hello: 2 replica(s) of 0.5 CPU, at most 1 per node" in line


def test_deploy_that_can_never_finish_leaves_the_head_running_and_unhealthy(
    docker_client: docker.DockerClient, container_name: str, cluster_token: ClusterToken
) -> None:
    """Decided behaviour: after RSH_SERVE_DEPLOY_TIMEOUT_S the head keeps running (a restart
    cannot fix a config or bring a node) but is unhealthy, and says why: the apps' states and
    the placement verdict, in its log and in Docker's health log."""
    container = docker_client.containers.run(
        IMAGE,
        command=["head"],
        name=container_name,
        detach=True,
        shm_size="512m",
        environment=LONE_COMPOSE_HEAD_ENV,
        volumes=cluster_token.volume,
        # The image's own health command, polled faster than its defaults.
        healthcheck={
            "test": ["CMD", "ray-serve-haproxy", "healthcheck"],
            "interval": 3 * SECOND_NS,
            "timeout": 10 * SECOND_NS,
            "retries": 2,
            "start_period": 5 * SECOND_NS,
        },
    )
    started = time.monotonic()
    status = ""
    while time.monotonic() - started < UNHEALTHY_WITHIN_S:
        container.reload()
        status = container.attrs["State"]["Health"]["Status"]
        logs = container.logs().decode(errors="replace")
        if status == "unhealthy" and "serve-up: FAILED" in logs:
            break
        time.sleep(2)
    took = time.monotonic() - started
    logs = container.logs().decode(errors="replace")
    assert status == "unhealthy", f"health {status!r} after {took:.0f}s\n{logs[-4000:]}"
    print(f"\n[image] unplaceable config: unhealthy {took:.1f}s after start")
    # Named before waiting (workers might still join) ...
    assert "serve-up: placement: the config cannot be placed on the nodes present" in logs
    # ... and as the reason at the timeout.
    failed = next(x for x in logs.splitlines() if x.startswith("serve-up: FAILED"))
    assert f"applications not RUNNING after {DEPLOY_TIMEOUT_S}s: hello=DEPLOYING" in failed
    assert "the config cannot be placed on the nodes present (1 node(s): head " in failed
    assert "(no node has room for one replica)" in failed
    # Still running, never restarted: the operator can look inside and fix it.
    time.sleep(5)
    container.reload()
    state = container.attrs["State"]
    assert state["Running"] and container.attrs["RestartCount"] == 0, state
    health_log = state["Health"]["Log"][-1]["Output"]
    assert "serve-up failed: applications not RUNNING" in health_log, health_log
    code, out = container.exec_run(["ray-serve-haproxy", "healthcheck"])
    assert code == 1 and b"cannot be placed" in out, out
