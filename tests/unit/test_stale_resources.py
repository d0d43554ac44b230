"""Which Docker resources a killed test session left (tests/stale_resources.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stale_resources import owner_pid, session_runs, stale_names

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        ("rshtest-4321", 4321),  # the session cluster's compose project
        ("/rshtest-4321-worker-2", 4321),  # a container name as the engine reports it
        ("rshtest-4321_gcs", 4321),  # its volume
        ("rshtest-4321_default", 4321),  # its network
        ("rshtest-tls-4321-entry", 4321),
        ("rshdiff-77-head-1", 77),
        ("rshauth-notoken-9", 9),
        ("rsh-machines-13076-ray-head-1", 13076),
        ("rsh-machines-13076-net", 13076),
        ("rsh-targets-readme-5", 5),
        ("ray-serve-haproxy-head-1", None),  # a user's cluster (scripts/cluster-up.sh)
        ("rshtest-tls-entry", None),
        ("rshtest-12ab", None),
        ("myrshtest-4321", None),
    ],
)
def test_owner_pid_reads_the_session_from_the_name(name: str, pid: int | None) -> None:
    assert owner_pid(name) == pid


def test_only_resources_of_sessions_that_no_longer_run_are_stale() -> None:
    names = [
        "rshtest-1",
        "rshtest-1_gcs",
        "rshtest-2",
        "rsh-machines-3-net",
        "ray-serve-haproxy_gcs",
    ]
    assert stale_names(names, runs=lambda pid: pid == 2) == [
        "rshtest-1",
        "rshtest-1_gcs",
        "rsh-machines-3-net",
    ]


def test_a_pid_reused_by_another_program_is_no_session(tmp_path: Path) -> None:
    (tmp_path / "10").mkdir()
    (tmp_path / "10" / "cmdline").write_bytes(b"/usr/bin/python3\0-m\0pytest\0tests\0")
    (tmp_path / "11").mkdir()
    (tmp_path / "11" / "cmdline").write_bytes(b"/usr/sbin/sshd\0")
    assert session_runs(10, proc=tmp_path)
    assert not session_runs(11, proc=tmp_path)
    assert not session_runs(12, proc=tmp_path)
