"""A node started with invalid HAProxy settings refuses to start, says why, and the running
cluster is not disturbed."""

from __future__ import annotations

import time

import pytest

from .cluster import Cluster, note

pytestmark = pytest.mark.integration


def test_worker_with_invalid_haproxy_settings_exits_naming_them(cluster: Cluster) -> None:
    start = time.monotonic()
    result = cluster.project.compose(
        "run",
        "--rm",
        "--no-deps",
        "-T",
        "-e",
        "RAY_SERVE_HAPROXY_MAXCONN=abc",
        "-e",
        "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S=-5",
        "worker",
        check=False,
        timeout_s=120,
    )
    elapsed = time.monotonic() - start
    output = result.stdout + result.stderr
    note(
        f"\nworker with invalid settings: exit {result.returncode} after {elapsed:.1f}s:\n"
        f"{output.strip()[-2000:]}"
    )
    assert result.returncode != 0
    # Every invalid setting is named, with its value, in one report.
    assert "RAY_SERVE_HAPROXY_MAXCONN" in output
    assert "abc" in output
    assert "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S" in output
    # Nothing was left behind: the one-off container is gone, the workers are the same two.
    assert len(cluster.workers()) == 2
    assert cluster.serving()
