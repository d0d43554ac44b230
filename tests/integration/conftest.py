"""One compose cluster (head + 2 workers, demo apps) for the whole integration session.

The project gets a unique name (rshtest-<pid>) and free host ports on 127.0.0.1, so it never
touches a cluster a user runs with the default ports. It is torn down with
`docker compose down -v --remove-orphans` whatever happens, including a failed start.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from .cluster import MEASUREMENTS, Cluster, note

if TYPE_CHECKING:
    from conftest import ClusterToken, ComposeProject

# Test modules run in name order: non-destructive checks first, scaling, then the faults.
# RSH_KEEP_CLUSTER=1 leaves the project running after the session, for debugging; the next
# session removes it (as it removes any project of a session that was killed).
PREFIX = "rshtest-"
# The entry HAProxy's own lines when it puts a node in or takes it out (its access log aside).
ENTRY_STATE_CHANGE = re.compile(
    r"Server nodes_\w+/\S+ (is |changed|was |administratively)|has no server"
)


@pytest.fixture(scope="session")
def cluster(
    image: str,
    compose_project: Callable[..., ComposeProject],
    host_port: Callable[[], int],
    remove_stale_projects: Callable[[str], None],
    cluster_token: ClusterToken,
) -> Iterator[Cluster]:
    ports = {
        "RSH_HTTP_HOST_PORT": host_port(),
        "RSH_DASHBOARD_HOST_PORT": host_port(),
        "RSH_METRICS_HOST_PORT": host_port(),
        "RSH_GRPC_HOST_PORT": host_port(),
    }
    remove_stale_projects(PREFIX)
    # The project's own token (never the user's .secrets/), handed to every node as compose's
    # file secret, exactly as scripts/cluster-up.sh does.
    env = {k: str(v) for k, v in ports.items()}
    env["RSH_RAY_TOKEN_FILE"] = str(cluster_token.node)
    project = compose_project(f"{PREFIX}{os.getpid()}", env=env)
    assert not project.containers(include_stopped=True), f"project {project.name} already exists"
    cluster = Cluster(
        project,
        http_port=ports["RSH_HTTP_HOST_PORT"],
        dashboard_port=ports["RSH_DASHBOARD_HOST_PORT"],
        metrics_port=ports["RSH_METRICS_HOST_PORT"],
        grpc_port=ports["RSH_GRPC_HOST_PORT"],
        token=cluster_token,
    )
    print(f"\n[cluster] project {project.name} image {image} ports {ports}")
    try:
        start = time.monotonic()
        result = project.compose(
            "up", "--detach", "--wait", "--wait-timeout", "420", check=False, timeout_s=480
        )
        cluster.up_seconds = time.monotonic() - start
        if result.returncode != 0:
            pytest.fail(
                f"`docker compose up --wait` exited {result.returncode}"
                f" after {cluster.up_seconds:.0f}s\n"
                f"{result.stderr[-3000:]}\n--- logs ---\n{project.logs(tail=150)}"
            )
        print(f"[cluster] `docker compose up --wait` returned after {cluster.up_seconds:.1f}s")
        yield cluster
    finally:
        if os.environ.get("RSH_KEEP_CLUSTER") == "1":
            print(f"[cluster] RSH_KEEP_CLUSTER=1: leaving project {project.name} running")
        else:
            start = time.monotonic()
            project.down()
            note(f"[cluster] project {project.name} removed in {time.monotonic() - start:.1f}s")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attaches the cluster's recent logs to the report of a failed test that used it."""
    report = yield
    if report.failed and call.when == "call" and "cluster" in getattr(item, "fixturenames", ()):
        cluster: Cluster = item.funcargs["cluster"]  # type: ignore[attr-defined]
        report.sections.append(("cluster logs (tail)", cluster.project.logs(tail=80)))
        # Which node the entry took out or put back, and why: the tail above is mostly the
        # access log of the failed requests.
        changes = [
            line
            for line in cluster.project.logs("entry", timestamps=True).splitlines()
            if ENTRY_STATE_CHANGE.search(line) and "[WARNING]" not in line
        ]
        report.sections.append(("the entry's node state changes", "\n".join(changes[-150:])))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("integration: measured")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
