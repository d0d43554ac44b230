"""run-ray's watch over HAProxy processes whose HAProxyManager died.

The launcher keeps a node's HAProxy alive past a crashed manager so that it serves on until
Serve's new manager takes over from it (haproxy_takeover.py; about 25 s measured). Two things
are left to the runtime:
  - once taken over (a manager's HAProxy runs again), the old one got its soft stop from the new
    one but may keep idle connections open: Ray repeats the soft stop (SIGUSR1) of its own old
    processes on every reload, and this watch repeats it for the orphans on every look;
  - should no new manager come (Serve stopped the node's proxy with a force kill, Serve is
    gone), the orphan would go on serving routes nobody updates: after ORPHAN_GRACE_S without a
    manager it gets its soft stop (it closes its ports, finishes what it has).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from .processes import haproxy_by_parent, send

# Several times the ~25 s Serve takes to notice the dead manager and start a new one.
ORPHAN_GRACE_S = 120.0


class OrphanWatch:
    def __init__(
        self,
        binary: str | None,
        grace_s: float = ORPHAN_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
        find: Callable[[str | None], tuple[list[int], list[int]]] = haproxy_by_parent,
    ) -> None:
        self.binary = binary
        self.grace_s = grace_s
        self.clock = clock
        self.find = find
        self.since: dict[int, float] = {}  # orphaned pid -> when first seen so
        self.stopping: set[int] = set()

    def poll(self) -> list[tuple[int, str]]:
        """Soft-stops the orphans that were taken over or waited out the grace period; returns
        those stopped for the first time, each with why."""
        now = self.clock()
        managed, orphans = self.find(self.binary)
        self.since = {pid: self.since.get(pid, now) for pid in orphans}
        if managed:
            due = {pid: "taken over by the new manager's HAProxy" for pid in orphans}
        else:
            due = {
                pid: f"no HAProxyManager for {self.grace_s:g}s"
                for pid, since in self.since.items()
                if now - since >= self.grace_s
            }
        send(sorted(due), signal.SIGUSR1)
        first = [(pid, why) for pid, why in sorted(due.items()) if pid not in self.stopping]
        self.stopping = (self.stopping | set(due)) & set(orphans)
        return first
