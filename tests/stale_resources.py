"""What killed test sessions left in Docker, found by name and removed before a session starts.

Every container, network and volume a test session creates carries the session's pid in its
name (rshtest-<pid>, rsh-machines-<pid>-ray-head-1, rshtest-<pid>_gcs, ...). A session killed
before its teardown leaves them behind, and those with a restart policy (compose's nodes, the
docker-run machines) come back each time the engine starts: four Ray nodes from a killed run
took the CPU of the next CI run's cluster, whose worker then failed to start. A resource is
stale when its pid no longer runs pytest; one of a session still running is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import docker

# The prefixes tests name their resources with, each followed by the session's pid.
STALE_NAME = re.compile(
    r"^(?:rshtest-tls-|rshtest-|rshdiff-|rshauth-notoken-|rsh-machines-|rsh-targets-readme-)"
    r"(\d+)(?:[-_.]|$)"
)


def owner_pid(name: str) -> int | None:
    """The pid of the test session that named a resource `name`, or None when no test did."""
    match = STALE_NAME.match(name.lstrip("/"))
    return int(match.group(1)) if match else None


def session_runs(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether `pid` is a running pytest session (a reused pid of another program is not)."""
    try:
        return b"pytest" in (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def stale_names(names: list[str], runs: Callable[[int], bool] = session_runs) -> list[str]:
    """The names among `names` that a test session which no longer runs gave out."""
    return [n for n in names if (pid := owner_pid(n)) is not None and not runs(pid)]


def remove_stale(client: docker.DockerClient) -> list[str]:
    """Removes stale test containers, then their networks and volumes; returns what it removed.
    Never raises: a resource already gone or still in use is left to the next session."""
    removed: list[str] = []
    kinds = (
        (client.containers.list(all=True), lambda c: c.remove(force=True)),
        (client.networks.list(), lambda n: n.remove()),
        (client.volumes.list(), lambda v: v.remove(force=True)),
    )
    for resources, remove in kinds:
        by_name = {r.name: r for r in resources}
        for name in stale_names(sorted(by_name)):
            try:
                remove(by_name[name])
                removed.append(name)
            except docker.errors.APIError:
                pass
    return removed
