"""The per-node directories Ray's HAProxyManager leaves on disk, kept bounded.

Ray 2.60 writes everything of a node's HAProxy under <dir>/<node id>/ (config, sockets,
server state, and a stdout/stderr file pair per HAProxy process it starts). Within one Ray
incarnation Ray bounds the pairs itself (the ten latest exited ones are kept, older ones
deleted; an actor restart sweeps its node's pairs). But every start of Ray gets a new node
id, so each restart of Ray inside the same container (the watchdog's restarts keep the
container's files) leaves one more directory behind. run-ray calls `prune_stale_node_dirs`
before it starts Ray, when no HAProxy of ours runs: the newest earlier directory is kept for
troubleshooting (why did the last one stop?), older ones are removed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from .settings import Settings

# A Ray node id: 28 bytes in hex.
NODE_DIR = re.compile(r"^[0-9a-f]{56}$")
KEEP_EARLIER = 1


def haproxy_base_dirs(values: Settings) -> list[str]:
    """Where Ray puts per-node directories for this node's HAProxy files (usually one)."""
    dirs = [
        os.path.dirname(values.config_file_loc),
        os.path.dirname(values.socket_path),
        os.path.dirname(values.metrics_socket_path),
        os.path.dirname(values.server_state_file),
        values.server_state_base,
    ]
    return list(dict.fromkeys(dirs))


def node_dirs(base: Path) -> list[Path]:
    """Per-node directories under `base`, newest (last modified) first."""
    try:
        found = [p for p in base.iterdir() if p.is_dir() and NODE_DIR.match(p.name)]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def prune_stale_node_dirs(bases: Iterable[str], keep: int = KEEP_EARLIER) -> list[Path]:
    """Removes all but the `keep` newest per-node directories under each base; returns the
    removed ones. Only call it while no HAProxy of ours runs: every directory is stale then."""
    removed = []
    for base in dict.fromkeys(bases):
        for stale in node_dirs(Path(base))[keep:]:
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed
