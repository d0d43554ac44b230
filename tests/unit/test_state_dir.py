"""Private directories, role file and Serve markers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ray_serve_haproxy.settings_loader import Role
from ray_serve_haproxy.state_dir import (
    SERVE_FAILED,
    SERVE_READY,
    UnsafeDirectory,
    clear_markers,
    ensure_private_dir,
    mark,
    private_dir_problem,
    read_marker,
    read_role,
    write_role,
)

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_private_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    ensure_private_dir(str(target))
    assert mode(target) == 0o700
    assert private_dir_problem(str(target)) is None


def test_tightens_an_existing_open_directory(tmp_path: Path) -> None:
    target = tmp_path / "open"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    assert "0755" in (private_dir_problem(str(target)) or "")
    ensure_private_dir(str(target))
    assert mode(target) == 0o700


def test_refuses_a_shared_sticky_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(UnsafeDirectory):
        ensure_private_dir(str(shared))
    assert mode(shared) == 0o1777  # left alone


def test_missing_directory_is_not_a_problem_yet(tmp_path: Path) -> None:
    assert private_dir_problem(str(tmp_path / "later")) is None


def test_role_round_trip(tmp_path: Path) -> None:
    assert read_role(str(tmp_path)) is None
    write_role(str(tmp_path), Role.WORKER)
    assert read_role(str(tmp_path)) == Role.WORKER
    (tmp_path / "role").write_text("garbage\n")
    assert read_role(str(tmp_path)) is None


def test_markers(tmp_path: Path) -> None:
    mark(str(tmp_path), SERVE_FAILED, "application 'x' failed")
    mark(str(tmp_path), SERVE_READY, "ok")
    assert read_marker(str(tmp_path), SERVE_FAILED) == "application 'x' failed"
    clear_markers(str(tmp_path))
    assert read_marker(str(tmp_path), SERVE_FAILED) is None
    assert read_marker(str(tmp_path), SERVE_READY) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
