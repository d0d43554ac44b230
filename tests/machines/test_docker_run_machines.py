"""docs/docker-run.md "A cluster of machines with `docker run`", run as written with the Docker SDK:
the token script, the head, two workers and the entry, then requests through the entry.

What it emulates: the docs give every Ray node `--network host` on a machine of its own, so
that each node has the machine's address (RSH_NODE_IP) and all of its ports. On one machine
host networking would put every node on the same ports, so each container gets an address of its
own on a user-defined bridge network instead (a static IP, which becomes its RSH_NODE_IP): its
own network namespace, reachable by the others at that address, as a machine would be. The docs'
example addresses 10.0.0.N become N in a free subnet; the entry's port 8000 is published on a
free 127.0.0.1 port to stand for "clients reach the entry machine"; names, the token directory
and the volume get the test's own prefix. Everything else is the documented command line. Not
emulated: firewalls between machines and hosts with several interfaces (unit tests cover the
RSH_NODE_IP check with such address lists).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shlex
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest
import requests
from docker.models.containers import Container
from ray_serve_haproxy.net_interfaces import local_addresses

from .docs_commands import (
    DOCS_IMAGE,
    ENTRY_IP,
    HEAD_IP,
    REPO,
    WORKER_IPS,
    DockerRun,
    commands,
    parse_docker_run,
)

pytestmark = pytest.mark.image

IMAGE = os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest")
PREFIX = f"rsh-machines-{os.getpid()}"
DOCS_ADDRESS = re.compile(r"\b10\.0\.0\.(\d+)\b")
DOCS_TOKEN_DIR = "/etc/ray-serve-haproxy"
SERVING_WITHIN_S = 300
REQUESTS = 200
# The docs' machines, by the role their `docker run` starts.
MACHINES = {"head": (HEAD_IP,), "worker": WORKER_IPS, "entry": (ENTRY_IP,)}


def host_routes() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes (/proc/net/route), so the test network shadows none of them."""
    routes = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            dest, mask = (struct.pack("<I", int(fields[i], 16)) for i in (1, 7))
            if mask != b"\0\0\0\0":
                routes.append(
                    ipaddress.IPv4Network(f"{socket.inet_ntoa(dest)}/{socket.inet_ntoa(mask)}")
                )
    return routes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Machines:
    """The containers, network and volumes this test creates, and how the docs map onto them."""

    def __init__(self, client: docker.DockerClient, tmp: Path) -> None:
        self.client = client
        self.api = client.api
        self.token_dir = tmp / "ray-serve-haproxy"
        self.network = f"{PREFIX}-net"
        self.subnet = self._create_network()
        self.containers: list[str] = []
        self.volumes: set[str] = set()
        self.entry_port = free_port()

    def _create_network(self) -> ipaddress.IPv4Network:
        taken = list(host_routes())
        for net in self.client.networks.list():
            for config in (net.attrs.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(KeyError, ValueError):
                    taken.append(ipaddress.ip_network(config["Subnet"]))
        hosts = [ipaddress.ip_address(a) for a in (local_addresses() or {})]
        for third in range(200, 255):
            subnet = ipaddress.IPv4Network(f"10.213.{third}.0/24")
            if any(subnet.overlaps(t) for t in taken if t.version == 4) or any(
                a in subnet for a in hosts
            ):
                continue
            pool = docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet[254]))
            try:
                self.client.networks.create(
                    self.network, driver="bridge", ipam=docker.types.IPAMConfig(pool_configs=[pool])
                )
            except docker.errors.APIError as exc:  # another user took it meanwhile
                if "overlap" in str(exc).lower():
                    continue
                raise
            return subnet
        pytest.fail("no free 10.213.x.0/24 subnet for the test network")

    def ip(self, docs_ip: str) -> str:
        """The test's address for one of the docs' 10.0.0.N."""
        match = DOCS_ADDRESS.fullmatch(docs_ip)
        assert match, docs_ip
        return str(self.subnet[int(match.group(1))])

    def localize(self, text: str) -> str:
        text = DOCS_ADDRESS.sub(lambda m: self.ip(m.group(0)), text)
        return text.replace(DOCS_TOKEN_DIR, str(self.token_dir))

    def name(self, docs_name: str, machine: str) -> str:
        return f"{PREFIX}-{docs_name}-{machine.rsplit('.', 1)[1]}"

    def run_script(self, command: str) -> None:
        """A documented shell command that is not `docker run` (the token script), run here;
        `sudo` dropped (CI runs as root; the script handles other users itself)."""
        line = self.localize(re.sub(r"^sudo\s+", "", command))
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", line],
            cwd=REPO,
            env={**os.environ, "RSH_IMAGE": IMAGE},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"`{line}`:\n{result.stdout}\n{result.stderr}"

    def docker_run(self, run: DockerRun, machine: str) -> Container:
        """`run` as the Docker SDK's create + start, on `machine` (a docs address)."""
        assert run.image == DOCS_IMAGE, run.image
        assert run.network == "host", "the docs run every node with host networking"
        ip = self.ip(machine)
        binds = []
        for volume in run.volumes:
            source, rest = volume.split(":", 1)
            if not source.startswith("/"):  # a named volume
                source = f"{PREFIX}-{source}"
                self.volumes.add(source)
            binds.append(f"{self.localize(source)}:{rest}")
        # Clients reach the entry machine's 8000: here, a free port on the host's loopback.
        published = {8000: ("127.0.0.1", self.entry_port)} if run.role == "entry" else {}
        host_config = self.api.create_host_config(
            binds=binds,
            shm_size=run.shm_size,
            restart_policy={"Name": run.restart} if run.restart else None,
            network_mode=self.network,
            port_bindings=published,
        )
        name = self.name(run.name, machine)
        created = self.api.create_container(
            IMAGE,
            command=run.command,
            name=name,
            environment={k: self.localize(v) for k, v in run.env.items()},
            host_config=host_config,
            networking_config=self.api.create_networking_config(
                {self.network: self.api.create_endpoint_config(ipv4_address=ip)}
            ),
            ports=list(published),
            stop_timeout=run.stop_timeout,
        )
        self.containers.append(name)
        self.api.start(created["Id"])
        return self.client.containers.get(name)

    def by_docs_name(self, docs_name: str) -> list[Container]:
        found = [c for c in self.containers if c.startswith(f"{PREFIX}-{docs_name}-")]
        return [self.client.containers.get(c) for c in found]

    def logs(self) -> str:
        out = []
        for name in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                text = self.client.containers.get(name).logs(tail=40).decode(errors="replace")
                out.append(f"--- {name}\n{text}")
        return "\n".join(out)

    def remove(self) -> None:
        """Every container, the network and the volumes this test created; never raises."""
        for name in self.containers:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.containers.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.networks.get(self.network).remove()
        for volume in self.volumes:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.volumes.get(volume).remove(force=True)


@pytest.fixture
def machines(docker_client: docker.DockerClient, image: str, tmp_path: Path) -> Iterator[Machines]:
    made = Machines(docker_client, tmp_path)
    try:
        yield made
    finally:
        made.remove()


def exec_in(container: Container, argv: list[str]) -> tuple[int, str]:
    code, out = container.exec_run(argv)
    return int(code), (out or b"").decode(errors="replace")


def entry_nodes_up(entry: Container) -> set[str]:
    """Addresses of the nodes the entry sends HTTP traffic to, from `status --json`."""
    code, out = exec_in(entry, ["ray-serve-haproxy", "status", "--json"])
    if code != 0:
        return set()
    up = set()
    for sock in json.loads(out).get("sockets", []):
        for backend in sock.get("backends") or []:
            if backend["name"] == "nodes_http":
                up |= {
                    s["address"].rsplit(":", 1)[0]
                    for s in backend["servers"]
                    if str(s["status"]).startswith("UP")
                }
    return up


# Ray 2.60 starts an inter-deployment gRPC server in every replica on "[::]:0" (replica.py,
# `_on_initialized`): a random port no setting fixes, which the docs name as the one exception.
REPLICA_GRPC_OWNER = "ray::ServeRepli"  # the process name, as /proc truncates it


def ports_left_to_ray(check_output: str) -> list[str]:
    """The ports `check` lists as chosen by Ray that listen beyond loopback, but the replicas'
    inter-deployment gRPC servers."""
    line = next((x for x in check_output.splitlines() if "chosen by Ray:" in x), None)
    if line is None:
        return []
    listed = line.split("chosen by Ray:", 1)[1].split("; open it", 1)[0]
    exposed = []
    for item in (i.strip() for i in listed.split(",")):
        # "PORT OWNER" listens on every interface, "PORT OWNER on ADDRESS" on one.
        where = item.rsplit(" on ", 1)[1] if " on " in item else "0.0.0.0"
        owner = item.split()[1]
        # Docker's DNS (bridge networks only) is on 127.0.0.11.
        if not ipaddress.ip_address(where).is_loopback and owner != REPLICA_GRPC_OWNER:
            exposed.append(item)
    return exposed


def test_documented_machines_serve_through_the_entry_from_both_workers(
    machines: Machines,
) -> None:
    started = time.monotonic()
    runs: dict[str, DockerRun] = {}
    checks: list[str] = []
    for command in commands():
        if command.startswith("docker run "):
            run = parse_docker_run(command)
            runs[run.role] = run
            for machine in MACHINES[run.role]:
                if run.role == "worker":
                    # The docs: "on 10.0.0.3 the same command with RSH_NODE_IP=10.0.0.3".
                    run = replace(run, env={**run.env, "RSH_NODE_IP": machine})
                machines.docker_run(run, machine)
        elif command.startswith(("curl ", "docker exec ")):
            checks.append(command)  # run once the cluster serves
        else:
            machines.run_script(command)
    assert set(runs) == {"head", "worker", "entry"}, runs
    head_ip, worker_ips = machines.ip(HEAD_IP), {machines.ip(w) for w in WORKER_IPS}
    (entry,) = machines.by_docs_name(runs["entry"].name)
    url = f"http://127.0.0.1:{machines.entry_port}"

    # Serving: every node UP in the entry (the head routes, each worker has replicas).
    up: set[str] = set()
    while time.monotonic() - started < SERVING_WITHIN_S:
        up = entry_nodes_up(entry)
        if up == {head_ip, *worker_ips}:
            break
        time.sleep(2)
    serving_s = time.monotonic() - started
    assert up == {head_ip, *worker_ips}, f"entry's nodes UP: {up}\n{machines.logs()}"
    print(
        f"\n[machines] head + 2 workers + entry: every node UP in the entry after {serving_s:.1f}s"
    )

    # Traffic through the entry: replicas on both workers answer, none fails.
    answered: Counter[str] = Counter()
    failed: list[str] = []
    began = time.monotonic()
    with requests.Session() as session:
        for i in range(REQUESTS):
            try:
                response = session.get(f"{url}/hello?name=m{i}", timeout=10)
                if response.status_code != 200:
                    failed.append(f"{response.status_code} {response.text[:200]}")
                    continue
                answered[response.json()["node_ip"]] += 1
            except (requests.RequestException, ValueError, KeyError) as exc:
                failed.append(repr(exc))
    took = time.monotonic() - began
    print(
        f"[machines] {REQUESTS} requests through the entry in {took:.1f}s: "
        f"{dict(answered)}, failed {len(failed)}"
    )
    assert not failed, failed[:5]
    assert set(answered) == worker_ips, answered  # both workers, never the head (no CPUs)

    # The docs' own checks.
    for command in checks:
        argv = shlex.split(machines.localize(command), comments=True)
        if argv[0] == "curl":
            target = argv[-1].replace(
                machines.ip(ENTRY_IP) + ":8000", f"127.0.0.1:{machines.entry_port}"
            )
            body = requests.get(f"http://{target}", timeout=10).json()
            assert body["node_ip"] in worker_ips, body
            continue
        docs_name, inner = argv[2], argv[3:]
        containers = machines.by_docs_name(docs_name)
        assert containers, f"`{command}`: no container {docs_name}"
        for container in containers:
            code, out = exec_in(container, inner)
            assert code == 0, f"`{command}` in {container.name} exited {code}:\n{out}"
            if inner[-1] == "status" and docs_name == runs["entry"].name:
                assert all(f"{ip}:8000" in out for ip in (head_ip, *worker_ips)), out
    # What the firewall table promises: on every node, no port beyond loopback left to Ray.
    for docs_name in (runs["head"].name, runs["worker"].name):
        for container in machines.by_docs_name(docs_name):
            code, out = exec_in(container, ["ray-serve-haproxy", "check"])
            print(f"[machines] check on {container.name}: exit {code}")
            assert ports_left_to_ray(out) == [], out
            assert "FAIL " not in out, out
    print(f"[machines] wall time {time.monotonic() - started:.1f}s")
