"""Fixtures and helpers shared by every test layer that runs the image.

- IMAGE: the image under test (env RSH_IMAGE, default ray-serve-haproxy:latest).
- ComposeProject: drives `docker compose` for one project (its own name, its own host ports)
  through the CLI, and finds the project's containers through the docker SDK. Tests get it
  through the `compose_project` fixture (a factory), so no test module imports this file.
- cluster: the session's one compose cluster, shared by tests/edge and tests/integration.
- ClusterToken: the token files scripts/ray-token.sh makes (Ray's token authentication is on
  by default); `cluster_token` is one per session, `make_cluster_token` makes more.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest
from docker.models.containers import Container

if TYPE_CHECKING:
    from integration.cluster import Cluster

IMAGE = os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest")
REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "compose.yaml"
# The overlay `scripts/cluster-up.sh --tls` adds: HTTPS and gRPC over TLS at the entry.
COMPOSE_TLS_FILE = REPO / "compose.tls.yaml"


@dataclass(frozen=True)
class ClusterToken:
    """A cluster's token as scripts/ray-token.sh leaves it: `user` (mode 0600, this user's: for
    requests from the host) and `node` (mode 0400, uid 1000's: what a container mounts at
    /run/secrets/ray_token, e.g. compose's RSH_RAY_TOKEN_FILE)."""

    user: Path
    node: Path

    def value(self) -> str:
        return self.user.read_text().strip()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value()}"}

    @property
    def volume(self) -> dict[str, dict[str, str]]:
        """docker SDK `volumes=` that hand the token to a container where the image looks."""
        return {str(self.node): {"bind": "/run/secrets/ray_token", "mode": "ro"}}


def run_script(name: str, directory: Path) -> Path:
    """Runs scripts/NAME DIRECTORY with the image under test, as cluster-up runs it; returns the
    path it prints (fails the test on a non-zero exit)."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / name), str(directory)],
        env={**os.environ, "RSH_IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/{name} exited {result.returncode}: {result.stderr}")
    return Path(result.stdout.strip())


def make_cluster_token(directory: Path) -> ClusterToken:
    """A new token in `directory` (created with mode 0700), made the way cluster-up makes one."""
    return ClusterToken(directory / "ray_token", run_script("ray-token.sh", directory))


@dataclass(frozen=True)
class LocalTls:
    """What scripts/tls-local.sh DIR leaves: the local CA clients trust (`ca`) and the directory
    the entry mounts (`entry_dir`, compose.tls.yaml's RSH_ENTRY_TLS_DIR)."""

    ca: Path
    entry_dir: Path


@pytest.fixture(scope="session")
def local_tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    """The session's local CA and entry certificate, made by the script cluster-up --tls runs."""
    directory = tmp_path_factory.mktemp("local-tls") / "tls"
    return LocalTls(run_script("tls-local.sh", directory), directory / "entry")


@pytest.fixture(scope="session")
def cluster_token(tmp_path_factory: pytest.TempPathFactory) -> ClusterToken:
    """One token for the session's containers."""
    return make_cluster_token(tmp_path_factory.mktemp("ray-token") / "secrets")


@pytest.fixture(scope="session")
def new_cluster_token(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], ClusterToken]:
    """Factory: another cluster's token, each call a new one."""
    return lambda: make_cluster_token(tmp_path_factory.mktemp("other-token") / "secrets")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ComposeProject:
    """One `docker compose -p NAME` project built from the repository's compose file."""

    def __init__(
        self,
        name: str,
        client: docker.DockerClient,
        *,
        env: dict[str, str] | None = None,
        files: Sequence[Path] = (COMPOSE_FILE,),
    ) -> None:
        self.name = name
        self.client = client
        self.files = list(files)
        self.env = {**os.environ, "RSH_IMAGE": IMAGE, **(env or {})}

    @property
    def network(self) -> str:
        return f"{self.name}_default"

    def compose(
        self,
        *args: str,
        check: bool = True,
        timeout_s: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `docker compose -p NAME -f FILE... ARGS`; stdout and stderr are captured."""
        argv = ["docker", "compose", "-p", self.name]
        for file in self.files:
            argv += ["-f", str(file)]
        argv += list(args)
        result = subprocess.run(
            argv,
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`{shlex.join(argv)}` exited {result.returncode}\n"
                f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
            )
        return result

    def up(
        self, *args: str, wait_timeout_s: int = 420, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`docker compose up --detach --wait ARGS`, as scripts/cluster-up.sh runs it: Compose's
        --wait gives up on a node that turned unhealthy while Ray aborted its start (a busy
        machine; docs/troubleshooting.md), though the restart policy starts it again. When Docker
        restarted a node meanwhile, it waits once more."""
        up = ("up", "--detach", "--wait", "--wait-timeout", str(wait_timeout_s), *args)
        before = self.restart_counts()
        result = self.compose(*up, check=False, timeout_s=wait_timeout_s + 60)
        if result.returncode != 0 and self.restarted_since(before):
            print(
                f"[compose] {self.name}: `up --wait` gave up ({result.stderr.strip()[-200:]});"
                f" restarted since: {self.restart_counts()}; waiting again"
            )
            result = self.compose(*up, check=False, timeout_s=wait_timeout_s + 60)
        if check and result.returncode != 0:
            pytest.fail(
                f"`docker compose up --wait {shlex.join(args)}` exited {result.returncode}\n"
                f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
            )
        return result

    def restart_counts(self) -> dict[str, int]:
        """{container name: restarts} of the project's containers that Docker restarted."""
        return {
            c.name: c.attrs["RestartCount"]
            for c in self.containers(include_stopped=True)
            if c.attrs["RestartCount"]
        }

    def restarted_since(self, before: dict[str, int], within_s: float = 90) -> bool:
        """Whether Docker restarted a container since `before` (restart_counts()) once no
        container is unhealthy any more, waiting at most `within_s` for that: a node whose Ray
        start aborted exits about a minute after it turned unhealthy."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            # containers() inspects each container anew: State is current.
            health = [c.attrs["State"].get("Health", {}).get("Status") for c in self.containers()]
            if "unhealthy" not in health:
                now = self.restart_counts()
                return any(count > before.get(name, 0) for name, count in now.items())
            time.sleep(2)
        return False

    def down(self) -> None:
        """Removes every container, network and volume of the project; never raises. Without a
        graceful stop (3 s, then SIGKILL): a throwaway project has nothing to drain, and Ray's
        stop took 17-21 s per project (graceful stops have tests of their own, tests/image)."""
        try:
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "3", check=False)
        except Exception as exc:  # teardown must not hide the test's own failure
            print(f"compose down of {self.name} failed: {exc!r}")

    def containers(
        self, service: str | None = None, *, include_stopped: bool = False
    ) -> list[Container]:
        """The project's containers (running only, unless include_stopped), by replica number."""
        labels = [f"com.docker.compose.project={self.name}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        found = self.client.containers.list(all=include_stopped, filters={"label": labels})
        return sorted(
            found, key=lambda c: int(c.labels.get("com.docker.compose.container-number", 0))
        )

    def container(self, service: str, number: int = 1) -> Container:
        for container in self.containers(service, include_stopped=True):
            if int(container.labels["com.docker.compose.container-number"]) == number:
                return container
        raise LookupError(f"no container {service}-{number} in project {self.name}")

    def ip(self, container: Container) -> str:
        container.reload()
        return str(container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"])

    def exec(
        self,
        container: Container,
        command: str | list[str],
        *,
        user: str | None = None,
    ) -> tuple[int, str]:
        """Runs a command in a running container; returns (exit code, stdout+stderr)."""
        kwargs = {"user": user} if user else {}
        code, output = container.exec_run(command, demux=False, **kwargs)
        return int(code), (output or b"").decode(errors="replace")

    def sh(self, container: Container, script: str) -> tuple[int, str]:
        return self.exec(container, ["sh", "-c", script])

    def logs(
        self, service: str | None = None, *, tail: int | None = None, timestamps: bool = False
    ) -> str:
        args = ["logs", "--no-color", "--no-log-prefix"]
        if timestamps:
            args.append("--timestamps")
        if tail is not None:
            args += ["--tail", str(tail)]
        if service:
            args.append(service)
        result = self.compose(*args, check=False, timeout_s=120)
        return result.stdout + result.stderr


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The engine, once what killed sessions left there is gone (stale_resources.py)."""
    from stale_resources import remove_stale

    client = docker.from_env(timeout=300)
    removed = remove_stale(client)
    if removed:
        print(f"\n[docker] removed what killed test sessions left: {', '.join(removed)}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(docker_client: docker.DockerClient) -> str:
    """The image under test; the session fails at once when it has not been built."""
    try:
        docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {IMAGE} not found: build it with scripts/build-image.sh")
    return IMAGE


@pytest.fixture(scope="session")
def compose_project(
    docker_client: docker.DockerClient,
) -> Callable[..., ComposeProject]:
    """Factory: compose_project(name, env={...}, files=[...]) -> ComposeProject."""

    def make(
        name: str,
        *,
        env: dict[str, str] | None = None,
        files: Sequence[Path] = (COMPOSE_FILE,),
    ) -> ComposeProject:
        return ComposeProject(name, docker_client, env=env, files=files)

    return make


@pytest.fixture(scope="session")
def host_port() -> Callable[[], int]:
    """Factory for free 127.0.0.1 ports, so a test project never collides with a user's cluster."""
    return free_port


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """(demo_pb2, demo_pb2_grpc), generated once per session from the demo's .proto."""
    from integration.grpc_client import generate_stubs  # grpc_tools: only where gRPC is used

    return generate_stubs(tmp_path_factory.mktemp("grpc-stubs"))


# The compose projects of the shared session cluster: rshtest-<pid>.
CLUSTER_PREFIX = "rshtest-"


@pytest.fixture(scope="session")
def cluster(
    image: str,
    compose_project: Callable[..., ComposeProject],
    host_port: Callable[[], int],
    cluster_token: ClusterToken,
    local_tls: LocalTls,
) -> Iterator[Cluster]:
    """The session's one compose cluster (head + 2 workers, demo apps, the entry), shared by
    tests/edge (which runs first and leaves it healthy) and tests/integration. Its project has a
    unique name (rshtest-<pid>) and free host ports on 127.0.0.1, so it never touches a cluster a
    user runs with the default ports; it is torn down with `docker compose down -v
    --remove-orphans` whatever happens, including a failed start. RSH_KEEP_CLUSTER=1 leaves it
    running after the session (the next session removes it, as any project of a killed one)."""
    from integration.cluster import Cluster, note

    ports = {
        "RSH_HTTP_HOST_PORT": host_port(),
        "RSH_DASHBOARD_HOST_PORT": host_port(),
        "RSH_METRICS_HOST_PORT": host_port(),
        "RSH_GRPC_HOST_PORT": host_port(),
        "RSH_HTTPS_HOST_PORT": host_port(),
        "RSH_GRPC_TLS_HOST_PORT": host_port(),
    }
    # The project's own token (never the user's .secrets/), handed to every node as compose's
    # file secret, exactly as scripts/cluster-up.sh does.
    env = {k: str(v) for k, v in ports.items()}
    env["RSH_RAY_TOKEN_FILE"] = str(cluster_token.node)
    # TLS at the entry as `scripts/cluster-up.sh --tls` brings it up: compose.tls.yaml over
    # compose.yaml, the certificate from scripts/tls-local.sh (plain HTTP keeps serving).
    env["RSH_ENTRY_TLS_DIR"] = str(local_tls.entry_dir)
    project = compose_project(
        f"{CLUSTER_PREFIX}{os.getpid()}", env=env, files=(COMPOSE_FILE, COMPOSE_TLS_FILE)
    )
    assert not project.containers(include_stopped=True), f"project {project.name} already exists"
    cluster = Cluster(
        project,
        http_port=ports["RSH_HTTP_HOST_PORT"],
        dashboard_port=ports["RSH_DASHBOARD_HOST_PORT"],
        metrics_port=ports["RSH_METRICS_HOST_PORT"],
        grpc_port=ports["RSH_GRPC_HOST_PORT"],
        https_port=ports["RSH_HTTPS_HOST_PORT"],
        grpc_tls_port=ports["RSH_GRPC_TLS_HOST_PORT"],
        tls_ca=local_tls.ca,
        token=cluster_token,
    )
    print(f"\n[cluster] project {project.name} image {image} ports {ports}")
    try:
        start = time.monotonic()
        result = project.up(check=False)
        cluster.up_seconds = time.monotonic() - start
        if result.returncode != 0:
            pytest.fail(
                f"`docker compose up --wait` exited {result.returncode}"
                f" after {cluster.up_seconds:.0f}s\n"
                f"{result.stderr[-3000:]}\n--- logs ---\n{project.logs(tail=150)}"
            )
        restarted = project.restart_counts()
        print(
            f"[cluster] `docker compose up --wait` returned after {cluster.up_seconds:.1f}s"
            + (f"; containers restarted while it came up: {restarted}" if restarted else "")
        )
        if restarted:  # why, for whoever reads CI's log: each restarted node's Ray abort, if any
            for container in project.containers():
                if container.name in restarted:
                    print(container.logs(tail=15).decode(errors="replace"))
        yield cluster
    finally:
        if os.environ.get("RSH_KEEP_CLUSTER") == "1":
            print(f"[cluster] RSH_KEEP_CLUSTER=1: leaving project {project.name} running")
        else:
            start = time.monotonic()
            project.down()
            note(f"[cluster] project {project.name} removed in {time.monotonic() - start:.1f}s")
