"""Ray's token authentication on the compose cluster: the control plane refuses whoever lacks
the token (dashboard APIs answer 401, a node cannot join), the token works for the dashboard,
Ray's CLI and `serve deploy`, HAProxy's client ports need none, and the token shows up in no
`docker inspect`, no container log, no process environment, no file of Ray's and no image layer."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest
import requests
from docker.models.containers import Container

from .cluster import APPS, Cluster, note, wait_for
from .layer_scan import env_holds_token, scan_saved_image

if TYPE_CHECKING:
    from conftest import ClusterToken, ComposeProject

pytestmark = pytest.mark.integration

CONTROL_APIS = ("/api/jobs/", "/api/serve/applications/", "/api/v0/nodes")
DEMO_CONFIG = "/opt/ray-serve-haproxy/examples/demo/serve_config.yaml"
# What the refused node's own log says (Ray's GCS answers UNAUTHENTICATED / InvalidAuthToken).
REFUSED = ("InvalidAuthToken", "Unauthenticated", "UNAUTHENTICATED")
REFUSAL_WITHIN_S = 150
REPO = Path(__file__).resolve().parents[2]


def leaks(haystack: str | bytes, token: str) -> bool:
    """Whether `token` occurs in `haystack`; a bool, so that a failing assert cannot print it."""
    if isinstance(haystack, bytes):
        return token.encode() in haystack
    return token in haystack


def ray_nodes(cluster: Cluster) -> list[dict[str, Any]]:
    """Ray's node table (State API on the head's dashboard, with the token)."""
    response = cluster.dashboard("GET", "/api/v0/nodes", params={"limit": 1000})
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    return list(response.json()["data"]["result"]["result"])


@pytest.fixture
def extra_containers(cluster: Cluster) -> Iterator[list[Container]]:
    """Containers a test starts on the cluster's network; removed afterwards, whatever happens."""
    started: list[Container] = []
    yield started
    for container in started:
        try:
            container.remove(force=True)
        except docker.errors.APIError as exc:
            print(f"removing {container.name} failed: {exc!r}")


def start_container(
    cluster: Cluster,
    image: str,
    started: list[Container],
    name: str,
    command: list[str],
    *,
    environment: dict[str, str] | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
) -> Container:
    container = cluster.project.client.containers.run(
        image,
        command=command,
        name=f"{cluster.project.name}-{name}",
        detach=True,
        network=cluster.project.network,
        environment={"RAY_USAGE_STATS_ENABLED": "0", **(environment or {})},
        volumes=volumes or {},
        shm_size="512m",
        mem_limit="2g",
    )
    started.append(container)
    return container


def run_client(
    cluster: Cluster,
    image: str,
    started: list[Container],
    name: str,
    command: list[str],
    **kwargs: Any,
) -> tuple[int, str]:
    """Runs a command (e.g. Ray's CLI) in a throwaway container of the image on the network."""
    container = start_container(cluster, image, started, name, command, **kwargs)
    status = container.wait(timeout=240)
    return int(status["StatusCode"]), container.logs().decode(errors="replace")


# --- compose without the token file ----------------------------------------------------------


def test_compose_up_without_the_token_file_stops_saying_which(
    compose_project: Callable[..., ComposeProject],
    host_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    """`docker compose up` before scripts/ray-token.sh (or cluster-up) made the file."""
    missing = tmp_path / "secrets" / "ray_token.node"
    ports = ("RSH_HTTP_HOST_PORT", "RSH_DASHBOARD_HOST_PORT", "RSH_METRICS_HOST_PORT")
    env = {name: str(host_port()) for name in (*ports, "RSH_GRPC_HOST_PORT")}
    env["RSH_RAY_TOKEN_FILE"] = str(missing)
    project = compose_project(f"rshauth-notoken-{os.getpid()}", env=env)
    try:
        result = project.compose("up", "--detach", "--no-deps", "head", check=False, timeout_s=120)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"bind source path does not exist: {missing}" in output, output
        assert not [c for c in project.containers() if c.status == "running"]
    finally:
        project.down()


# --- the dashboard ----------------------------------------------------------------------------


def test_control_apis_refuse_requests_without_the_right_token(cluster: Cluster) -> None:
    wrong = "Bearer " + "0f" * 32
    for path in CONTROL_APIS:
        missing = cluster.dashboard("GET", path, token=False)
        assert missing.status_code == 401, f"{path} without a token: {missing.status_code}"
        refused = cluster.dashboard("GET", path, token=False, headers={"Authorization": wrong})
        assert refused.status_code == 403, f"{path} with a wrong token: {refused.status_code}"
        allowed = cluster.dashboard("GET", path)
        assert allowed.status_code == 200, f"{path} with the token: {allowed.status_code}"
    # A deploy without the token changes nothing.
    before = cluster.app_statuses()
    config = cluster.serve_config()
    put = cluster.dashboard("PUT", "/api/serve/applications/", token=False, json=config)
    assert put.status_code == 401, put.status_code
    assert cluster.app_statuses() == before
    note(
        f"\ndashboard without token: 401, wrong token: 403, token: 200 ({', '.join(CONTROL_APIS)})"
    )


def test_browser_login_sets_an_httponly_cookie_that_opens_the_apis(cluster: Cluster) -> None:
    # What the dashboard's login page does with the token pasted into it.
    assert cluster.dashboard("GET", "/", token=False).status_code == 200  # the page itself
    mode = cluster.dashboard("GET", "/api/authentication_mode", token=False)
    assert mode.json() == {"authentication_mode": "token"}, mode.text
    session = requests.Session()
    login = session.post(
        cluster.dashboard_url + "/api/authenticate", headers=cluster.token.headers(), timeout=20
    )
    assert login.status_code == 200, login.text
    cookie = login.headers.get("Set-Cookie", "")
    assert cookie.startswith("ray-authentication-token=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert session.get(cluster.dashboard_url + "/api/jobs/", timeout=20).status_code == 200


def test_data_path_needs_no_token(cluster: Cluster) -> None:
    for path in APPS.values():
        response = requests.get(cluster.base_url + path, timeout=10)  # no Authorization header
        assert response.status_code == 200, f"{path}: {response.status_code}"
    assert requests.get(cluster.base_url + "/-/healthz", timeout=10).status_code == 200
    metrics = requests.get(cluster.metrics_url, timeout=10)
    assert metrics.status_code == 200 and "haproxy_" in metrics.text  # Prometheus scrapes as is


# --- Ray's CLI with and without the token ----------------------------------------------------


def test_ray_cli_with_the_token_submits_jobs_and_deploys(
    cluster: Cluster, image: str, cluster_token: ClusterToken, extra_containers: list[Container]
) -> None:
    """The README's way from another machine: the token file, RAY_AUTH_MODE=token (the image
    sets both), `ray job submit` and `serve deploy` against the dashboard."""
    started = time.monotonic()
    code, out = run_client(
        cluster,
        image,
        extra_containers,
        "job-client",
        [
            "ray",
            "job",
            "submit",
            "--address",
            "http://head:8265",
            "--",
            "python",
            "-c",
            "print('job-ran-' + 'on-the-cluster')",
        ],
        volumes=cluster_token.volume,
    )
    assert code == 0 and "job-ran-on-the-cluster" in out, out[-3000:]
    assert "succeeded" in out, out[-3000:]
    job_s = time.monotonic() - started
    code, out = run_client(
        cluster,
        image,
        extra_containers,
        "serve-client",
        ["serve", "deploy", "--address", "http://head:8265", DEMO_CONFIG],
        volumes=cluster_token.volume,
    )
    assert code == 0 and "Sent deploy request successfully" in out, out[-3000:]
    cluster.wait_serving(timeout_s=120)
    # Without the token (and only because asked by name), the same CLI is turned away.
    code, out = run_client(
        cluster,
        image,
        extra_containers,
        "job-client-no-token",
        ["ray", "job", "submit", "--address", "http://head:8265", "--", "true"],
        environment={"RAY_AUTH_MODE": "disabled"},
    )
    assert code != 0, out[-3000:]
    assert "401" in out or "Authentication required" in out, out[-3000:]
    note(f"\n`ray job submit` with the token: succeeded in {job_s:.1f}s; without: refused (401)")


# --- a node without the token cannot join -----------------------------------------------------


@pytest.mark.parametrize("how", ["no-token", "wrong-token"])
def test_node_without_the_token_cannot_join(
    cluster: Cluster,
    image: str,
    extra_containers: list[Container],
    new_cluster_token: Callable[[], ClusterToken],
    how: str,
) -> None:
    if how == "no-token":
        # Authentication off by name: this node neither has nor sends a token.
        environment, volumes = {"RAY_AUTH_MODE": "disabled"}, None
    else:
        # A well-formed token of another cluster.
        environment, volumes = {}, new_cluster_token().volume
    environment |= {"RSH_HEAD_ADDRESS": "head:6379", "RSH_NUM_CPUS": "0"}
    environment |= {"RSH_OBJECT_STORE_MEMORY": "100000000", "RAY_SERVE_HAPROXY_MAXCONN": "4096"}
    started = time.monotonic()
    intruder = start_container(
        cluster,
        image,
        extra_containers,
        f"intruder-{how}",
        ["worker"],
        environment=environment,
        volumes=volumes,
    )
    intruder_ip = cluster.project.ip(intruder)

    def refused() -> str | None:
        logs = intruder.logs().decode(errors="replace")
        return next((line for line in logs.splitlines() if any(r in line for r in REFUSED)), None)

    line = wait_for(f"{how} node's refusal in its log", refused, timeout_s=REFUSAL_WITHIN_S)
    took = time.monotonic() - started
    intruder.reload()
    # Ray's own view: the head's node table lists the three cluster nodes and not the intruder.
    nodes = ray_nodes(cluster)
    by_ip = {node["node_ip"]: node for node in nodes}
    assert intruder_ip not in by_ip, f"the {how} node joined: {by_ip[intruder_ip]}"
    for worker in cluster.workers():
        assert by_ip.get(worker.ip, {}).get("state") == "ALIVE", (worker.name, nodes)
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    assert len(alive) == 3, alive
    # `ray status` in the head container (Ray's CLI finds the token through the image's env).
    code, status = cluster.exec_head(["ray", "status"])
    assert code == 0, status
    active = status.split("Active:", 1)[1].split("Pending:", 1)[0]
    assert active.count("node_") == 3, status
    note(
        f"\n{how} node ({intruder_ip}): refused after {took:.1f}s "
        f"({intruder.status}), Ray lists {len(alive)} alive nodes, not it: {line.strip()[:160]}"
    )


# --- the token is nowhere it should not be ----------------------------------------------------

# Every process environment in a container, one NUL-separated variable per line; grep reads the
# token from the secret file itself, so it never appears on a command line.
PROC_ENVIRON = r"""
n=0
for f in /proc/[0-9]*/environ; do
  tr '\0' '\n' < "$f" 2>/dev/null && n=$((n + 1))
done > /tmp/rsh-environ.txt
echo "processes=$n"
grep -cF -f /run/secrets/ray_token /tmp/rsh-environ.txt || true
rm -f /tmp/rsh-environ.txt
"""
# Files the runtime, Ray and HAProxy write: none may hold the token.
FILES_WITH_TOKEN = (
    "grep -rlF -f /run/secrets/ray_token /tmp/ray /tmp/ray-serve-haproxy /tmp/haproxy-serve "
    "/home/ray 2>/dev/null; echo files-scanned=$(find /tmp/ray /tmp/ray-serve-haproxy "
    "/tmp/haproxy-serve /home/ray -type f 2>/dev/null | wc -l)"
)


def test_token_in_no_inspect_log_environment_or_file(
    cluster: Cluster, cluster_token: ClusterToken
) -> None:
    token = cluster_token.value()
    containers = cluster.project.containers(include_stopped=True)
    assert len(containers) >= 3
    for container in containers:
        container.reload()
        attrs = json.dumps(container.attrs)
        assert not leaks(attrs, token), f"`docker inspect {container.name}` shows the token"
        # What it shows instead: the secret's file, mounted where the image's env points. The
        # entry talks to no Ray and gets no secret at all.
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        is_entry = container.labels.get("com.docker.compose.service") == "entry"
        env = container.attrs["Config"]["Env"]
        assert not any(e.startswith("RAY_AUTH_TOKEN=") for e in env)
        if is_entry:
            # The token never enters it: nothing inside to scan for.
            assert "/run/secrets/ray_token" not in mounts, f"{container.name} got the secret"
            continue
        assert mounts["/run/secrets/ray_token"]["Source"] == str(cluster_token.node)
        assert "RAY_AUTH_TOKEN_PATH=/run/secrets/ray_token" in env
        code, out = cluster.project.sh(container, PROC_ENVIRON)
        assert code == 0, out
        scanned, found = out.split()
        assert int(scanned.split("=")[1]) >= 5, out  # supervisord, raylet, ... really scanned
        assert found == "0", f"{container.name}: {found} process environment entries hold it"
        code, out = cluster.project.sh(container, FILES_WITH_TOKEN)
        files = [line for line in out.splitlines() if not line.startswith("files-scanned=")]
        assert not files, f"{container.name}: files holding the token: {files}"
        assert int(out.rsplit("files-scanned=", 1)[1]) > 10, out
    logs = cluster.project.logs()
    assert len(logs) > 10_000, "too little log to mean anything"
    assert not leaks(logs, token), "`docker compose logs` shows the token"
    note(
        f"\ntoken in none of {len(containers)} containers' inspect/env/files, {len(logs)} log chars"
    )


def test_token_in_no_image_layer(cluster: Cluster, image: str, cluster_token: ClusterToken) -> None:
    """No layer holds a secret (layer_scan.py, whose unit test shows it finds one): no file
    under run/secrets/ (build secrets such as the CA bundle, the token's mount point), no token
    or CA-secret file by name, no RAY_AUTH_TOKEN in the image's environment, and neither the
    session's token nor a developer's own .secrets/ray_token (made before the build, so one a
    careless COPY could have taken) anywhere in `docker history` or `docker save`."""
    values = [cluster_token.value().encode()]
    own = REPO / ".secrets" / "ray_token"
    if own.is_file():
        values.append(own.read_text().strip().encode())
    client = cluster.project.client
    built = client.images.get(image)
    history = json.dumps(built.history())
    assert not any(leaks(history, v.decode()) for v in values), "`docker history` shows a token"
    assert not env_holds_token(built.attrs["Config"].get("Env")), "ENV sets RAY_AUTH_TOKEN"
    started = time.monotonic()
    found = scan_saved_image(built.save(chunk_size=4 * 1024 * 1024, named=False), values)
    assert not found.names, f"secret files in the image's layers: {found.names}"
    # Indexes only: a failing assert must not print a token.
    assert not found.values, f"`docker save` holds secret value(s) number {found.values}"
    assert found.bytes_read > 100 * 1024 * 1024, f"only {found.bytes_read} bytes saved"
    assert found.layers > 5 and found.files > 10_000, (found.layers, found.files)
    note(
        f"\n`docker save` {found.bytes_read / 2**20:.0f} MiB, {found.layers} layers, "
        f"{found.files} files scanned in {time.monotonic() - started:.1f}s "
        f"({len(values)} token(s) looked for)"
    )
