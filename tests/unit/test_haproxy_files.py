"""Per-node HAProxy directories of earlier Rays: pruned to the newest one at run-ray's start."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.haproxy_files import haproxy_base_dirs, node_dirs, prune_stale_node_dirs
from ray_serve_haproxy.settings_loader import EffectiveSettings

pytestmark = pytest.mark.unit


def make_node_dir(base: Path, char: str, age_s: float) -> Path:
    d = base / (char * 56)
    d.mkdir(parents=True)
    for n in range(1, 4):
        (d / f"admin.sock.9.{n}.stdout.log").write_text("")
        (d / f"admin.sock.9.{n}.stderr.log").write_text("[WARNING] ...\n")
    (d / "haproxy.cfg").write_text("global\n")
    os.utime(d, (time.time() - age_s,) * 2)
    return d


def test_only_the_newest_earlier_directory_is_kept(tmp_path: Path) -> None:
    base = tmp_path / "haproxy-serve"
    old, older, newest = (
        make_node_dir(base, c, age) for c, age in (("a", 200), ("b", 300), ("c", 100))
    )
    unrelated = base / "not-a-node"
    unrelated.mkdir()
    (base / "haproxy.cfg.lock").write_text("")
    assert node_dirs(base) == [newest, old, older]
    removed = prune_stale_node_dirs([str(base), str(base)])
    assert sorted(removed) == sorted([old, older])
    assert sorted(p.name for p in base.iterdir()) == sorted(
        [newest.name, "not-a-node", "haproxy.cfg.lock"]
    )
    assert len(list(newest.iterdir())) == 7  # kept whole
    assert prune_stale_node_dirs([str(base)]) == []


def test_missing_base_is_nothing_to_prune(tmp_path: Path) -> None:
    assert prune_stale_node_dirs([str(tmp_path / "nothing")]) == []


def test_base_dirs_follow_the_path_settings(load: Callable[..., EffectiveSettings]) -> None:
    values = load().values
    hap = os.path.dirname(values.config_file_loc)
    assert haproxy_base_dirs(values) == [hap]  # private_paths puts everything in one directory
    values = load(RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH="/tmp/rsh-m/metrics.sock").values
    assert haproxy_base_dirs(values) == [hap, "/tmp/rsh-m"]
