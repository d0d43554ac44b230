"""Processes as /proc shows them: Ray's daemons, our HAProxy processes, signalling them.

Reads /proc directly (Linux only), so the healthcheck needs no extra dependency. Only this
user's processes are considered: in the image that is everything the runtime started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    exe: str | None  # None when unreadable
    state: str  # one-letter state from /proc/<pid>/stat; "Z" is a zombie
    ppid: int = 0


def _read_proc(directory: Path) -> Proc | None:
    try:
        pid = int(directory.name)
        if directory.stat().st_uid != os.getuid():
            return None
        comm = (directory / "comm").read_text().strip()
        stat = (directory / "stat").read_text()
    except (ValueError, OSError):
        return None
    # "pid (comm) S ..." - comm may contain spaces and parentheses, so split at the last ')'.
    fields = stat.rsplit(")", 1)[1].split() if ")" in stat else []
    state = fields[0] if fields else "?"
    ppid = int(fields[1]) if len(fields) > 1 else 0
    try:
        exe: str | None = os.readlink(directory / "exe").removesuffix(" (deleted)")
    except OSError:
        exe = None
    return Proc(pid, comm, exe, state, ppid)


def processes(proc_root: Path = PROC) -> list[Proc]:
    """This user's live (non-zombie) processes."""
    found = []
    try:
        entries = list(proc_root.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.isdigit():
            proc = _read_proc(entry)
            if proc is not None and proc.state != "Z":
                found.append(proc)
    return found


def pids_by_comm(names: Iterable[str], proc_root: Path = PROC) -> dict[str, list[int]]:
    """Pids of this user's processes whose command name is one of `names`."""
    wanted: dict[str, list[int]] = {name: [] for name in names}
    for proc in processes(proc_root):
        if proc.comm in wanted:
            wanted[proc.comm].append(proc.pid)
    return wanted


def _is_haproxy(proc: Proc, target: str | None) -> bool:
    if target is not None and proc.exe is not None:
        return os.path.realpath(proc.exe) == target
    return proc.comm == "haproxy"


def haproxy_processes(binary: str | None, proc_root: Path = PROC) -> list[int]:
    """Pids of our HAProxy processes: those running `binary` (any 'haproxy' if unknown)."""
    target = os.path.realpath(binary) if binary else None
    return sorted(p.pid for p in processes(proc_root) if _is_haproxy(p, target))


def haproxy_by_parent(binary: str | None, proc_root: Path = PROC) -> tuple[list[int], list[int]]:
    """Pids of our HAProxy processes: (those a Ray worker runs, i.e. the HAProxyManager's;
    those whose parent is no Ray worker: their manager died, as the launcher keeps HAProxy out
    of its process group)."""
    target = os.path.realpath(binary) if binary else None
    managed: list[int] = []
    orphaned: list[int] = []
    for proc in processes(proc_root):
        if not _is_haproxy(proc, target):
            continue
        try:
            parent = (proc_root / str(proc.ppid) / "cmdline").read_bytes()
        except OSError:
            parent = b""
        (managed if parent.startswith(b"ray::") else orphaned).append(proc.pid)
    return sorted(managed), sorted(orphaned)


def is_alive(pid: int, proc_root: Path = PROC) -> bool:
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: Iterable[int], timeout_s: float, proc_root: Path = PROC) -> list[int]:
    """Waits until every pid has exited (or is a zombie); returns the ones still alive."""
    deadline = time.monotonic() + timeout_s
    alive = [p for p in pids if is_alive(p, proc_root)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if is_alive(p, proc_root)]
    return alive


def send(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def drain_haproxy(
    binary: str | None, timeout_s: float, withdraw_s: float = 0.0
) -> tuple[list[int], list[int]]:
    """Soft-stops every HAProxy of ours and waits up to `timeout_s` for them to finish.

    SIGUSR1 closes the listeners (new connections are refused, so a load balancer moves on)
    while the requests in flight run to completion. Returns (found, still running).

    With `withdraw_s` (counted in `timeout_s`), HAProxy first only releases its listening ports
    (SIGTTOU) for that long, still serving the connections it has: whatever balances over the
    nodes (the entry) sees its health checks refused and stops sending here before the soft
    stop closes those connections. (A soft stop alone tells an HTTP/2 client to go away while
    it may be sending a new stream, which then fails as refused.)
    """
    pids = haproxy_processes(binary)
    if not pids:
        return [], []
    start = time.monotonic()
    withdraw_s = min(withdraw_s, timeout_s)
    if withdraw_s > 0:
        send(pids, signal.SIGTTOU)
        time.sleep(withdraw_s)
    send(pids, signal.SIGUSR1)
    return pids, wait_gone(pids, max(0.0, timeout_s - (time.monotonic() - start)))


def stop_haproxy(
    binary: str | None, grace_s: float = 5.0, log: bool = True, withdraw_s: float = 0.0
) -> list[int]:
    """Soft-stops (SIGUSR1) every HAProxy of ours, SIGKILLs what is left after `grace_s`.

    Returns the pids that were found. SIGUSR1 makes HAProxy close its listeners and finish
    the requests in flight; SIGKILL then guarantees nothing keeps holding the ports.

    With `withdraw_s`, HAProxy first only releases its listening ports (SIGTTOU) for that long,
    still serving the connections it has: whatever balances over the nodes sees its health
    checks refused and stops sending here before the soft stop closes those connections. (A
    soft stop alone tells an HTTP/2 client to go away while it may be sending a new stream,
    which then fails as refused.)
    """
    pids = haproxy_processes(binary)
    if not pids:
        return []
    if withdraw_s > 0:
        if log:
            print(
                f"ray-serve-haproxy: HAProxy {pids} stops listening; soft stop in {withdraw_s:g}s",
                flush=True,
            )
        send(pids, signal.SIGTTOU)
        time.sleep(withdraw_s)
    elif log:
        print(f"ray-serve-haproxy: soft-stopping leftover HAProxy {pids}", flush=True)
    send(pids, signal.SIGUSR1)
    remaining = wait_gone(pids, grace_s)
    if remaining:
        if log:
            print(f"ray-serve-haproxy: killing HAProxy {remaining}", flush=True)
        send(remaining, signal.SIGKILL)
        wait_gone(remaining, 2.0)
    return pids
