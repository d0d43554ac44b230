"""docs/docker-run.md "A cluster of machines with `docker run`" against the runtime's settings
code, without Docker: the documented commands are valid settings for their machines, leave none
of Ray's ports to chance, and the firewall table lists exactly the ports those settings make a
node listen on (`exposure.known_ports`, what `check` reports)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from ray_serve_haproxy.exposure import known_ports
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.settings import Settings
from ray_serve_haproxy.settings_loader import InvalidSettings, Role, load_settings

from .docs_commands import (
    DOCS_IMAGE,
    ENTRY_IP,
    HEAD_IP,
    REPO,
    WORKER_IPS,
    DockerRun,
    PortRow,
    commands,
    docker_runs,
    port_rows,
)

pytestmark = pytest.mark.unit

IMAGE_DEMO = "/opt/ray-serve-haproxy/examples/demo"
HAPROXY = "/usr/local/bin/haproxy"
TOKEN_IN_CONTAINER = "/run/secrets/ray_token"
# Ray's ports that are random unless set: on machines every one must be fixed for a firewall.
RANDOM_UNLESS_SET = (
    "node_manager_port",
    "object_manager_port",
    "metrics_export_port",
    "dashboard_agent_grpc_port",
    "runtime_env_agent_port",
)
MACHINE = {"head": HEAD_IP, "worker": WORKER_IPS[0], "entry": ENTRY_IP}


@pytest.fixture(scope="module")
def runs() -> dict[str, DockerRun]:
    return docker_runs()


def settings_of(run: DockerRun, node_ip: str, tmp: Path) -> Settings:
    """The runtime's validated settings for `run` on a machine whose address is `node_ip`.
    Paths inside the image point to the repository files the image copies (or a temp dir)."""
    env = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_BINARY_PATH": HAPROXY}
    for key, value in run.env.items():
        value = value.replace(IMAGE_DEMO, str(REPO / "examples" / "demo"))
        env[key] = value.replace("/var/lib/ray/gcs", str(tmp / "gcs"))
    facts = HostFacts(
        cpus=2,
        shm_bytes=2 * 1024**3,
        haproxy_binary=HAPROXY,
        nofile_hard=1048576,
        executable=lambda path: path == HAPROXY,
        local_addresses={"127.0.0.1": "lo", node_ip: "eth0"},
    )
    try:
        return load_settings(env, role=Role(run.role), facts=facts, check_token=False).values
    except InvalidSettings as exc:
        pytest.fail(f"docs: `docker run ... {run.role}`: {exc.report()}")


def test_a_head_a_worker_and_an_entry_each_with_host_networking(
    runs: dict[str, DockerRun], tmp_path: Path
) -> None:
    assert set(runs) == {"head", "worker", "entry"}
    for run in runs.values():
        assert run.image == DOCS_IMAGE and run.network == "host", run
        assert run.restart == "unless-stopped", run
        shutdown = settings_of(run, MACHINE[run.role], tmp_path).shutdown_timeout_s
        assert run.stop_timeout is not None and run.stop_timeout >= shutdown + 5, run
    head, worker, entry = runs["head"], runs["worker"], runs["entry"]
    assert head.env["RSH_NODE_IP"] == HEAD_IP
    assert worker.env["RSH_NODE_IP"] == WORKER_IPS[0]
    ray_port = settings_of(head, HEAD_IP, tmp_path).ray_port
    assert worker.env["RSH_HEAD_ADDRESS"] == f"{HEAD_IP}:{ray_port}"
    assert entry.env["RSH_ENTRY_NODES"].split(",") == [HEAD_IP, *WORKER_IPS]
    assert "RSH_NODE_IP" not in entry.env


def test_every_ray_node_mounts_the_token_that_ray_token_sh_makes(
    runs: dict[str, DockerRun],
) -> None:
    scripts = [shlex.split(c) for c in commands() if "scripts/ray-token.sh" in c]
    assert len(scripts) == 1, scripts
    token_dir = scripts[0][scripts[0].index("scripts/ray-token.sh") + 1]
    mount = f"{token_dir}/ray_token.node:{TOKEN_IN_CONTAINER}:ro"
    for role in ("head", "worker"):
        assert mount in runs[role].volumes, runs[role].volumes
        assert not any(k.startswith("RAY_AUTH") for k in runs[role].env), runs[role].env
    assert not runs["entry"].volumes, "the entry talks to no Ray and gets no token"


def test_no_port_of_a_node_is_left_to_ray(runs: dict[str, DockerRun], tmp_path: Path) -> None:
    head = settings_of(runs["head"], HEAD_IP, tmp_path)
    worker = settings_of(runs["worker"], WORKER_IPS[0], tmp_path)
    for name in RANDOM_UNLESS_SET:
        assert getattr(head, name) is not None, f"head: {name} is left to Ray"
        # The same on every node: one firewall rule per port.
        assert getattr(worker, name) == getattr(head, name), name


def test_the_firewall_table_lists_exactly_the_ports_the_settings_make(
    runs: dict[str, DockerRun], tmp_path: Path
) -> None:
    head = settings_of(runs["head"], HEAD_IP, tmp_path)
    worker = settings_of(runs["worker"], WORKER_IPS[0], tmp_path)
    expected = {
        PortRow(port.label.split()[1], port.setting, port.what)
        for values, role in ((head, Role.HEAD), (worker, Role.WORKER))
        for port in known_ports(values, role)
    }
    rows = port_rows()
    assert len(rows) == len(set(rows)), "a row appears twice"
    assert set(rows) - expected == set(), "in the table, not in the settings"
    assert expected - set(rows) == set(), "in the settings, not in the table"
