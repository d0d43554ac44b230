"""The compose cluster under test, seen from the host: HTTP on its published 127.0.0.1 ports
(the entry), each node's own HAProxy at its address on the compose network, HAProxy's own view
through its admin socket (socat inside the container), processes via ps."""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import requests
from docker.models.containers import Container

if TYPE_CHECKING:
    from conftest import ClusterToken, ComposeProject  # tests/conftest.py; via fixtures

T = TypeVar("T")

DEMO_CONFIG_IN_IMAGE = "/opt/ray-serve-haproxy/examples/demo/serve_config.yaml"
# The HTTP demo apps the tests load and scale. The image's demo config may hold more (the gRPC
# app `greeter`, test_5_grpc.py): `Cluster.expected_routes` reads what the image deploys.
APPS = {"hello": "/hello", "echo": "/echo"}
GRPC_APP = "greeter"
BACKENDS = {app: f"http-{app}" for app in APPS}  # Ray names HAProxy backends <protocol>-<app>
DIRECT_INGRESS_PORTS = range(30000, 31001)

# Every HAProxy process in the container with the config it runs, then a command (`show stat`,
# `show info`) on the admin socket that config declares. Finds the socket wherever the runtime
# put it.
ADMIN_COMMAND = r"""
set -eu
for cfg in $(ps -C haproxy -o args= | sed -n 's/.* -f \([^ ]*\).*/\1/p' | sort -u); do
  sock=$(sed -n 's/^[[:space:]]*stats socket \([^[:space:]]*\).*/\1/p' "$cfg" | head -n 1)
  echo "{command}" | socat -t 5 stdio "unix-connect:$sock"
done
"""
SHOW_STAT = ADMIN_COMMAND.format(command="show stat")
# `Pid:` of the HAProxy answering the admin socket: the one holding the node's ports.
SHOW_INFO = ADMIN_COMMAND.format(command="show info")


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout_s: float,
    interval_s: float = 0.5,
) -> T:
    """Calls probe until it returns something truthy; fails the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # the condition may raise until it holds (connection refused...)
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        time.sleep(interval_s)


# Numbers the tests measured, repeated in the terminal summary (conftest.py) so that they
# show up even when pytest captures the tests' output.
MEASUREMENTS: list[str] = []


def note(message: str) -> None:
    """Prints a measurement and keeps its first line for the session's summary."""
    print(message)
    first = message.strip().splitlines()[0] if message.strip() else ""
    if first:
        MEASUREMENTS.append(first)


@dataclass(frozen=True)
class Node:
    """A worker container as the demo app reports it: node_ip is its address on the network."""

    name: str
    ip: str
    hostname: str
    container: Container


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    args: str


class Cluster:
    def __init__(
        self,
        project: ComposeProject,
        *,
        http_port: int,
        dashboard_port: int,
        metrics_port: int,
        grpc_port: int,
        token: ClusterToken,
        https_port: int | None = None,
        grpc_tls_port: int | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.project = project
        # Ray's token authentication is on: every dashboard call below sends this token.
        self.token = token
        self.http_port = http_port
        self.dashboard_port = dashboard_port
        self.metrics_port = metrics_port
        self.grpc_port = grpc_port
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        # TLS at the entry (compose.tls.yaml), when the project has it: ports and the local CA.
        self.https_port = https_port
        self.grpc_tls_port = grpc_tls_port
        self.tls_ca = tls_ca
        self._expected_routes: dict[str, str] | None = None
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.up_seconds = 0.0  # how long `docker compose up --wait` took

    # -- containers ---------------------------------------------------------------------------

    @property
    def head(self) -> Container:
        return self.project.container("head")

    @property
    def entry(self) -> Container:
        """The entry: HAProxy over every node's HAProxy, behind the published ports."""
        return self.project.container("entry")

    def node_url(self, container: Container, path: str = "") -> str:
        """A node's own HAProxy (Serve's HTTP port), reached at its address on the compose
        network: only the entry is published."""
        return f"http://{self.project.ip(container)}:8000{path}"

    def workers(self) -> list[Node]:
        nodes = []
        for container in self.project.containers("worker"):
            container.reload()
            nodes.append(
                Node(
                    container.name,
                    self.project.ip(container),
                    container.attrs["Config"]["Hostname"],
                    container,
                )
            )
        return nodes

    def exec_head(self, command: str | list[str]) -> tuple[int, str]:
        return self.project.exec(self.head, command)

    def processes(self, container: Container) -> list[Proc]:
        code, out = self.project.exec(container, ["ps", "-eo", "pid=,ppid=,args="])
        assert code == 0, out
        procs = []
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2:
                procs.append(Proc(int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else ""))
        return procs

    # -- HTTP through HAProxy ------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.get(self.base_url + path, **kwargs)

    def routes(self) -> dict[str, str]:
        response = self.get("/-/routes")
        response.raise_for_status()
        return dict(response.json())

    @property
    def expected_routes(self) -> dict[str, str]:
        """route prefix -> app, of every app in the image's demo config (what the head deploys)."""
        if self._expected_routes is None:
            self._expected_routes = {
                str(app.get("route_prefix", "/")): str(app["name"])
                for app in self.serve_config()["applications"]
            }
        return self._expected_routes

    def serving(self) -> bool:
        """HAProxy answers /-/healthz, lists every route, and both HTTP apps answer 200."""
        if self.get("/-/healthz").status_code != 200:
            return False
        if self.routes() != self.expected_routes:
            return False
        return all(self.get(prefix).status_code == 200 for prefix in APPS.values())

    # -- HAProxy's view ------------------------------------------------------------------------

    def show_stat(self, container: Container | None = None) -> list[dict[str, str]]:
        code, out = self.project.sh(container or self.head, SHOW_STAT)
        assert code == 0, f"show stat failed ({code}): {out}"
        rows: list[dict[str, str]] = []
        header: list[str] | None = None
        for line in out.splitlines():
            if line.startswith("# "):
                header = line[2:].split(",")
                continue
            if not line.strip() or header is None:
                continue
            values = next(csv.reader(io.StringIO(line)))
            rows.append(dict(zip(header, values, strict=False)))
        return rows

    def serving_haproxy(self, container: Container | None = None) -> int | None:
        """Pid of the HAProxy that answers the node's admin socket (None if none does)."""
        code, out = self.project.sh(container or self.head, SHOW_INFO)
        pids = [
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Pid:")
        ]
        return int(pids[0]) if code == 0 and pids and pids[0].isdigit() else None

    def replica_servers(
        self, container: Container | None = None
    ) -> dict[str, list[dict[str, str]]]:
        """backend -> its replica servers (not the fallback/backup servers), from `show stat`."""
        servers: dict[str, list[dict[str, str]]] = {}
        for row in self.show_stat(container):
            if row["svname"].startswith("SERVE_REPLICA"):
                servers.setdefault(row["pxname"], []).append(row)
        return servers

    def up_counts(self) -> dict[str, int]:
        """app -> number of its replica servers UP (routable) in the head's HAProxy.

        A server HAProxy just added (every reload starts a new process) shows "UP 1/2" until
        its first health check passes: it takes traffic, so it counts as UP here.
        """
        servers = self.replica_servers()
        return {
            app: sum(1 for s in servers.get(backend, []) if s["status"].startswith("UP"))
            for app, backend in BACKENDS.items()
        }

    def server_counts(self) -> dict[str, int]:
        """app -> number of its replica servers in the head's HAProxy, whatever their state."""
        servers = self.replica_servers()
        return {app: len(servers.get(backend, [])) for app, backend in BACKENDS.items()}

    def status_json(self) -> dict[str, Any]:
        """`ray-serve-haproxy status --json` on the head (the runtime's view of HAProxy)."""
        code, out = self.exec_head(["ray-serve-haproxy", "status", "--json"])
        assert code == 0, out
        return dict(json.loads(out))

    def status_server_counts(self) -> dict[str, int]:
        """app -> replica servers UP, as `ray-serve-haproxy status --json` reports them."""
        counts = dict.fromkeys(APPS, 0)
        for sock in self.status_json().get("sockets", []):
            for backend in sock.get("backends") or []:
                for app, name in BACKENDS.items():
                    if backend.get("name") == name:
                        counts[app] += sum(
                            1
                            for server in backend.get("servers") or []
                            if server.get("name", "").startswith("SERVE_REPLICA")
                            and str(server.get("status", "")).startswith("UP")
                        )
        return counts

    def entry_servers(self, backend: str = "nodes_http") -> list[dict[str, str]]:
        """The entry's servers (nodes) of `backend` that DNS filled, from its `show stat`."""
        return [
            row
            for row in self.show_stat(self.entry)
            if row["pxname"] == backend
            and row["svname"] != "BACKEND"
            and not row["status"].startswith("MAINT")
        ]

    def entry_up_addresses(self, backend: str = "nodes_http") -> set[str]:
        """IP addresses of the nodes the entry sends traffic to: UP with a passed check.

        HAProxy 3.0 puts a server UP the moment DNS gives it an address (a new container), before
        any check: it falls at its first refused connection. CI on 498e18f caught the replaced
        head in that moment; its checks had not passed (its HAProxy was not listening yet).
        """
        return {
            row["addr"].rsplit(":", 1)[0]
            for row in self.entry_servers(backend)
            if row["status"].startswith("UP") and row["check_status"] == "L7OK"
        }

    def haproxy_procs(self, container: Container | None = None) -> list[Proc]:
        return [p for p in self.processes(container or self.head) if _is_haproxy(p)]

    def managed_nodes(self) -> list[Container]:
        """The nodes (head first, always among them) where Serve's HAProxyManager runs an
        HAProxy: those follow the controller. Not a node Serve took its proxy from (its last
        replica left): the runtime keeps that orphaned HAProxy serving its last routes for up to
        120 s (orphan_watch.py), so it answers 404 for a route added since, then closes its
        ports. Nor, for some seconds, a node that just got replicas: Serve starts its manager
        after them."""
        nodes = [self.head, *(w.container for w in self.workers())]
        managed = [node for node in nodes if haproxy_by_manager(self.processes(node))[0]]
        names = [node.name for node in managed]
        assert nodes[0].name in names, f"no HAProxyManager's HAProxy on the head: {names}"
        return managed

    # -- Serve, through the dashboard's REST API -----------------------------------------------

    def serve_config(self) -> dict[str, Any]:
        """The demo's Serve config as baked into the image (what the head deployed)."""
        code, out = self.exec_head(
            [
                "python",
                "-c",
                "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                DEMO_CONFIG_IN_IMAGE,
            ]
        )
        assert code == 0, out
        return dict(json.loads(out.strip().splitlines()[-1]))

    def dashboard(
        self, method: str, path: str, *, token: bool = True, **kwargs: Any
    ) -> requests.Response:
        """A request to the head's dashboard (Jobs, Serve, State APIs), with the cluster's token
        unless token=False. Every dashboard call of the tests goes through here."""
        headers = {**(self.token.headers() if token else {}), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 20)
        return requests.request(method, self.dashboard_url + path, headers=headers, **kwargs)

    def applications(self) -> dict[str, Any]:
        response = self.dashboard("GET", "/api/serve/applications/")
        response.raise_for_status()
        return dict(response.json().get("applications") or {})

    def app_statuses(self) -> dict[str, str]:
        return {name: str(app.get("status")) for name, app in self.applications().items()}

    def replica_ids(self) -> dict[str, set[str]]:
        """app -> the actor names of its RUNNING replicas, as Serve reports them."""
        ids: dict[str, set[str]] = {}
        for name, app in self.applications().items():
            ids[name] = {
                str(replica.get("actor_name") or replica.get("replica_id"))
                for deployment in (app.get("deployments") or {}).values()
                for replica in deployment.get("replicas") or []
                if replica.get("state") == "RUNNING"
            }
        return ids

    def ray_nodes(self) -> list[dict[str, Any]]:
        """Every node Ray's GCS knows, alive or dead (the dashboard's state API)."""
        response = self.dashboard("GET", "/api/v0/nodes", params={"limit": 100})
        response.raise_for_status()
        return list(response.json()["data"]["result"]["result"])

    def alive_node_ips(self) -> set[str]:
        return {str(n["node_ip"]) for n in self.ray_nodes() if n.get("state") == "ALIVE"}

    def replica_states(self) -> dict[str, Counter[str]]:
        """app -> Counter of its replicas' states (RUNNING, STARTING, ...) as Serve sees them."""
        states: dict[str, Counter[str]] = {}
        for name, app in self.applications().items():
            counter: Counter[str] = Counter()
            for deployment in (app.get("deployments") or {}).values():
                counter.update(str(r.get("state")) for r in deployment.get("replicas") or [])
            states[name] = counter
        return states

    def deploy(self, config: dict[str, Any]) -> None:
        response = self.dashboard("PUT", "/api/serve/applications/", json=config, timeout=60)
        assert response.status_code == 200, (
            f"deploy failed: {response.status_code} {response.text[:2000]}"
        )

    def scaled_config(self, replicas: dict[str, int]) -> dict[str, Any]:
        """The demo config with num_replicas of each named app's deployments changed."""
        config = copy.deepcopy(self.serve_config())
        for app in config["applications"]:
            if app["name"] in replicas:
                for deployment in app.get("deployments", []):
                    deployment["num_replicas"] = replicas[app["name"]]
        return config

    def wait_serving(self, timeout_s: float = 300) -> float:
        """Waits until both apps are RUNNING and answer through HAProxy; returns seconds waited."""
        start = time.monotonic()
        wait_for(
            "both demo apps RUNNING",
            lambda: (
                all(s == "RUNNING" for s in self.app_statuses().values())
                and set(self.app_statuses()) >= set(APPS)
            ),
            timeout_s=timeout_s,
            interval_s=1,
        )
        wait_for(
            "HAProxy on the head serving both apps", self.serving, timeout_s=timeout_s, interval_s=1
        )
        return time.monotonic() - start

    def wait_up_counts(self, expected: dict[str, int], timeout_s: float) -> float:
        """Waits until the head's HAProxy has exactly `expected` replica servers per app, all UP."""
        start = time.monotonic()

        def settled() -> bool:
            return self.server_counts() == expected and self.up_counts() == expected

        wait_for(
            f"HAProxy servers per app == {expected}", settled, timeout_s=timeout_s, interval_s=0.25
        )
        return time.monotonic() - start


def _is_haproxy(proc: Proc) -> bool:
    argv0 = proc.args.split(" ", 1)[0]
    return argv0.rsplit("/", 1)[-1] == "haproxy"


def haproxy_by_manager(procs: list[Proc]) -> tuple[list[Proc], list[Proc]]:
    """A node's HAProxy processes: (those an HAProxyManager actor runs, the orphaned others)."""
    managers = {p.pid for p in procs if "HAProxyManager" in p.args}
    haproxy = [p for p in procs if _is_haproxy(p)]
    return [p for p in haproxy if p.ppid in managers], [
        p for p in haproxy if p.ppid not in managers
    ]
