"""Hooks of the integration session. Its one compose cluster (head + 2 workers, demo apps) is
the session fixture `cluster` in tests/conftest.py, shared with tests/edge (which runs first)
so that the session starts one cluster, not two.
"""

from __future__ import annotations

import re
from collections.abc import Generator

import pytest

from .cluster import MEASUREMENTS, Cluster

# Test modules run in name order: non-destructive checks first, scaling, then the faults.
# The entry HAProxy's own lines when it puts a node in or takes it out (its access log aside).
ENTRY_STATE_CHANGE = re.compile(
    r"Server nodes_\w+/\S+ (is |changed|was |administratively)|has no server"
)
# A node's HAProxy (Ray's configuration) when a replica server goes DOWN or UP.
NODE_STATE_CHANGE = re.compile(r"Server (grpc|http)-\S+/\S+ is (DOWN|UP)|has no server available")


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
        # A node's HAProxy taking replicas out (its checks of them failing) or putting them back.
        node_changes = [
            line
            for service in ("head", "worker")
            for line in cluster.project.logs(service, timestamps=True).splitlines()
            if NODE_STATE_CHANGE.search(line)
        ]
        report.sections.append(("the nodes' replica state changes", "\n".join(node_changes[-80:])))
        report.sections.append(("Serve's errors on each node", serve_errors(cluster)))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("integration: measured")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


# Serve writes a replica's or proxy's exception to its log file, not to the container's output:
# a 500 from a replica is explained only there.
SERVE_ERRORS = (
    "grep -h -E 'ERROR|Error:|Exception' /tmp/ray/session_latest/logs/serve/*.log 2>/dev/null"
    " | tail -n 15"
)


def serve_errors(cluster: Cluster) -> str:
    """The last error lines of Serve's log files on the head and on each worker."""
    lines = []
    for container in [cluster.head, *(worker.container for worker in cluster.workers())]:
        try:
            _, out = cluster.project.exec(container, ["sh", "-c", SERVE_ERRORS])
        except Exception as error:  # a node being replaced has no container for a moment
            out = f"(not read: {error})"
        lines.append(f"--- {container.name}\n{out.strip() or '(none)'}")
    return "\n".join(lines)
