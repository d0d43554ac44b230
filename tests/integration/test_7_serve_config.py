"""The Serve config a user declares is the one that runs (docs/serve-config-lifecycle.md), on the
compose cluster with its state on the `gcs` volume:

1. a changed RSH_SERVE_CONFIG (an app added, a num_replicas changed, an app removed, in one
   compose override) reaches the cluster with `docker compose up -d --wait`, no volume removed;
   the applications whose config did not change answer every request meanwhile (HTTP and gRPC
   through the entry) and keep their replicas;
2. an application deployed through Serve's API survives a head restart with the file unchanged,
   and nothing is deployed again (Serve's deploy time of every application stays);
3. a declared config that cannot be imported: `serve-up --force` fails naming the application
   and its error, and so do the head's Docker healthcheck and `status`;
4. back to the image's demo config with the plain compose file (the file wins again).

Runs after test_6 and leaves the cluster as it found it: serving the demo as the image deploys it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .cluster import Cluster, note, wait_for
from .grpc_client import GrpcLoad
from .load import Load, Sample, summarize
from .traffic import HEAD_FAULT_RATE_PER_CLIENT

if TYPE_CHECKING:
    from conftest import ComposeProject

pytestmark = pytest.mark.integration

CONFIGS_IN_HEAD = "/etc/rsh-test-configs"
NEW_APP = "new"  # added by the changed file
REMOVED_APP = "slow"  # removed by it
SCALED_APP = "echo"  # num_replicas 2 -> 1 in it
UNCHANGED_APPS = ("hello", "greeter")  # under traffic the whole time
API_APP = "api-app"  # deployed through Serve's API
BROKEN_APP = "broken"
MISSING_MODULE = "no_such_module"


def small_app(name: str, import_path: str) -> dict[str, Any]:
    return {
        "name": name,
        "route_prefix": f"/{name}",
        "import_path": import_path,
        "deployments": [
            {"name": "Hello", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}
        ],
    }


def changed_config(demo: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(demo)
    apps = [a for a in config["applications"] if a["name"] != REMOVED_APP]
    for app in apps:
        if app["name"] == SCALED_APP:
            app["deployments"][0]["num_replicas"] = 1
    config["applications"] = [*apps, small_app(NEW_APP, "demo_app:hello_app")]
    return config


@dataclass
class Declared:
    """The session's cluster, and a compose project that points its head at another config."""

    cluster: Cluster
    changed: dict[str, Any]
    override: ComposeProject
    restored: bool = False


@pytest.fixture(scope="module")
def declared(
    cluster: Cluster,
    compose_project: Callable[..., ComposeProject],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Declared]:
    cluster.wait_serving(timeout_s=300)
    directory = tmp_path_factory.mktemp("serve-configs")
    directory.chmod(0o755)  # the head's user (uid 1000) reads the files
    changed = changed_config(cluster.serve_config())
    broken = copy.deepcopy(changed)
    broken["applications"].append(small_app(BROKEN_APP, f"{MISSING_MODULE}:app"))
    for name, config in (("changed.yaml", changed), ("broken.yaml", broken)):
        (directory / name).write_text(json.dumps(config, indent=2))  # JSON is YAML
        (directory / name).chmod(0o644)
    override = directory / "compose.override.yaml"
    override.write_text(
        "services:\n  head:\n    environment:\n"
        f"      RSH_SERVE_CONFIG: {CONFIGS_IN_HEAD}/changed.yaml\n"
        "    volumes:\n"
        f"      - {{type: bind, source: {directory}, target: {CONFIGS_IN_HEAD}, read_only: true}}\n"
    )
    project = compose_project(
        cluster.project.name, env=cluster.project.env, files=[*cluster.project.files, override]
    )
    state = Declared(cluster, changed, project)
    yield state
    if not state.restored:  # a test failed on the way: leave the cluster as we found it
        cluster.project.up(*keep_workers(cluster))
        cluster.wait_serving(timeout_s=300)


def keep_workers(cluster: Cluster) -> tuple[str, str]:
    """`up` without it would scale the workers back to compose.yaml's 2, stopping those that
    earlier tests added (and every replica on them): only the declared config may change.

    Workers that earlier tests killed are removed first: Compose counts a stopped container in
    the scale, and `--scale` then started the killed worker and stopped a running one (CI on
    504b610: worker3 taken out of the entry under the test's traffic, one request cut).
    """
    cluster.project.compose("rm", "--force", "worker")  # stopped containers only
    return ("--scale", f"worker={len(cluster.workers())}")


def started_at(container: Any) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def deploy_times(cluster: Cluster) -> dict[str, float]:
    """app -> when Serve last deployed it (every deploy of a config sets it on each of its apps)."""
    return {
        name: float(app.get("last_deployed_time_s") or 0)
        for name, app in cluster.applications().items()
    }


def head_log(cluster: Cluster, since: float) -> str:
    return str(cluster.head.logs(since=int(since)).decode(errors="replace"))


def serve_up_lines(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if line.startswith("serve-up:"))


class UnchangedTraffic:
    """HTTP to `hello` and gRPC to `greeter` through the entry: apps no step here changes."""

    def __init__(self, cluster: Cluster, pb: tuple[Any, Any]) -> None:
        # Paced like test_6's head faults: the head restarts here too.
        rate = HEAD_FAULT_RATE_PER_CLIENT
        self.http = Load(
            {f"{cluster.base_url}/hello": "hello"},
            concurrency=8,
            max_duration_s=400,
            per_client_rate=rate,
        )
        self.grpc = GrpcLoad(cluster, pb, concurrency=4, max_duration_s=400, per_client_rate=rate)

    def __enter__(self) -> UnchangedTraffic:
        self.http.start()
        self.grpc.start()
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()
        self.grpc.stop()

    def check(self, label: str) -> None:
        elapsed = self.http.stopped_at - self.http.started_at
        for protocol, samples in (("HTTP", self.http.snapshot()), ("gRPC", self.grpc.snapshot())):
            note(f"  {label}, {protocol}: {summarize(samples, elapsed)}")
            failed: list[Sample] = [s for s in samples if not s.ok]
            assert len(samples) > 100, (protocol, len(samples))
            assert not failed, f"{protocol}: {len(failed)} failed, first: {failed[0]}"


def assert_kept(
    before: dict[str, set[str]], after: dict[str, set[str]], apps: tuple[str, ...]
) -> None:
    for app in apps:
        assert after.get(app) == before[app], (
            f"{app}: replicas before {sorted(before[app])}, after {sorted(after.get(app, []))}"
        )


def test_a_changed_config_applies_on_compose_up(declared: Declared, pb: tuple[Any, Any]) -> None:
    cluster = declared.cluster
    replicas = cluster.replica_ids()
    workers = {w.name: started_at(w.container) for w in cluster.workers()}
    since = time.time() - 1
    with UnchangedTraffic(cluster, pb) as traffic:
        start = time.monotonic()
        declared.override.up(*keep_workers(cluster), wait_timeout_s=300)
        took = time.monotonic() - start

        def new_app_serves() -> bool:
            response = cluster.get(f"/{NEW_APP}", timeout=5)
            return response.status_code == 200 and response.json()["app"] == NEW_APP

        wait_for(f"{NEW_APP} answering through the entry", new_app_serves, timeout_s=60)
        time.sleep(2)
    note(f"\nchanged config: `docker compose up -d --wait` returned after {took:.1f}s")
    traffic.check("changed config")
    log = serve_up_lines(head_log(cluster, since))
    print(log)
    assert "changed since it was last applied: deploying it" in log, log
    assert (
        f"deploying it over what Serve runs: adds {NEW_APP}; changes {SCALED_APP} "
        f"(deployments.Echo.num_replicas: 2 -> 1); removes {REMOVED_APP}; keeps greeter, hello"
    ) in log, log
    expected = {str(a["route_prefix"]): a["name"] for a in declared.changed["applications"]}
    wait_for("the changed config's routes", lambda: cluster.routes() == expected, timeout_s=60)
    wait_for(
        f"{SCALED_APP} down to 1 replica, every app RUNNING",
        lambda: (
            len(cluster.replica_ids().get(SCALED_APP, ())) == 1
            and set(cluster.app_statuses().values()) == {"RUNNING"}
        ),
        timeout_s=60,
    )
    # The workers never restarted; the apps the file did not change kept their replicas.
    assert {w.name: started_at(w.container) for w in cluster.workers()} == workers
    assert_kept(replicas, cluster.replica_ids(), UNCHANGED_APPS)


def test_an_api_deploy_survives_a_head_restart(declared: Declared, pb: tuple[Any, Any]) -> None:
    cluster = declared.cluster
    cluster.deploy(
        {
            **declared.changed,
            "applications": [
                *declared.changed["applications"],
                small_app(API_APP, "demo_app:hello_app"),
            ],
        }
    )
    wait_for(
        f"{API_APP} answering through the entry",
        lambda: cluster.get(f"/{API_APP}", timeout=5).status_code == 200,
        timeout_s=120,
    )
    wait_for(
        "every app RUNNING",
        lambda: set(cluster.app_statuses().values()) == {"RUNNING"},
        timeout_s=60,
    )
    times, replicas = deploy_times(cluster), cluster.replica_ids()
    head_started = started_at(cluster.head)
    since = time.time() - 1
    with UnchangedTraffic(cluster, pb) as traffic:
        start = time.monotonic()
        cluster.project.compose("restart", "head", timeout_s=120)

        def head_healthy_again() -> bool:
            head = cluster.head
            head.reload()
            state = head.attrs["State"]
            return bool(
                state["StartedAt"] != head_started and state["Health"]["Status"] == "healthy"
            )

        wait_for("the restarted head healthy", head_healthy_again, timeout_s=240, interval_s=2)
        took = time.monotonic() - start
        time.sleep(2)
    note(f"\nhead restarted with the same file: healthy again after {took:.1f}s")
    traffic.check("head restart, same file")
    log = serve_up_lines(head_log(cluster, since))
    print(log)
    assert "unchanged since it was applied: not deploying it" in log, log
    apps = ", ".join(sorted(times))
    assert f"Serve's applications keep their replicas: {apps}" in log, log
    # Nothing was deployed: a deploy of the file would have removed the application deployed
    # through the API, which still serves.
    note(f"  Serve's deploy times before == after: {deploy_times(cluster) == times}")
    assert cluster.get(f"/{API_APP}").json()["app"] == API_APP
    after = cluster.replica_ids()
    note(f"  replicas before == after: {after == replicas}")
    assert_kept(replicas, after, (*UNCHANGED_APPS, API_APP))


def test_a_config_that_cannot_import_is_named_by_the_probe(declared: Declared) -> None:
    cluster = declared.cluster
    start = time.monotonic()
    code, out = cluster.exec_head(
        [
            "ray-serve-haproxy",
            "serve-up",
            "--force",
            "--config",
            f"{CONFIGS_IN_HEAD}/broken.yaml",
            "--timeout",
            "120",
        ]
    )
    note(f"\nserve-up --force with {BROKEN_APP}: exit {code} after {time.monotonic() - start:.1f}s")
    print(out)
    assert code == 1, out
    gist = f"{BROKEN_APP}=DEPLOY_FAILED (ModuleNotFoundError: No module named '{MISSING_MODULE}')"
    assert f"FAILED: applications not RUNNING: {gist}" in out, out
    # The file wins over what was deployed through the API, and the log says so.
    assert f"removes {API_APP}" in out, out
    assert f"replaces what was changed through Serve's API since: {API_APP} (added" in out, out

    def probe_output() -> str | None:
        head = cluster.head
        head.reload()
        log = (head.attrs["State"].get("Health") or {}).get("Log") or []
        output = str(log[-1].get("Output", "")) if log else ""
        return output if gist in output else None

    output = wait_for("the head's Docker healthcheck naming the app", probe_output, timeout_s=40)
    note(f"  docker inspect: {output.strip()}")
    code, out = cluster.exec_head(["ray-serve-haproxy", "healthcheck"])
    assert code == 1 and gist in out, out
    code, out = cluster.exec_head(["ray-serve-haproxy", "status"])
    print(out)
    row = [line.split(None, 2) for line in out.splitlines() if line.strip().startswith(BROKEN_APP)]
    assert row and row[0][1:] == [
        "DEPLOY_FAILED",
        f"ModuleNotFoundError: No module named '{MISSING_MODULE}'",
    ], out
    # The other applications serve on.
    assert cluster.get("/hello").status_code == 200


def test_back_to_the_demo_config(declared: Declared) -> None:
    cluster = declared.cluster
    since = time.time() - 1
    start = time.monotonic()
    cluster.project.up(*keep_workers(cluster), wait_timeout_s=300)
    took = time.monotonic() - start
    note(f"\nback to the demo config: `docker compose up -d --wait` returned after {took:.1f}s")
    declared.restored = True
    log = serve_up_lines(head_log(cluster, since))
    print(log)
    assert "changed since it was last applied: deploying it" in log, log
    assert f"removes {BROKEN_APP}, {NEW_APP}" in log, log
    wait_for("the demo's routes", lambda: cluster.routes() == cluster.expected_routes, timeout_s=60)
    cluster.wait_serving(timeout_s=120)
    assert set(cluster.app_statuses()) == set(cluster.expected_routes.values())
