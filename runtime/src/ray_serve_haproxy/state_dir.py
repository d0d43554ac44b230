"""The runtime's state on disk: role file, Serve markers, private directories.

`head` / `worker` write RSH_STATE_DIR/role before starting supervisord; `healthcheck` reads it
to know which checks apply. `serve-up` leaves `serve-ready` or `serve-failed` (with the reason)
next to it, and `serve-progress` (what it is waiting for) while it works. Every directory the
runtime prepares is mode 0700, because Ray creates HAProxy's admin socket with mode 666 and only
the directory keeps other users out.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .settings import Settings
from .settings_loader import Role

ROLE_FILE = "role"
SERVE_READY = "serve-ready"
SERVE_FAILED = "serve-failed"
SERVE_PROGRESS = "serve-progress"
SUPERVISOR_CONF = "supervisord.conf"
SUPERVISOR_SOCKET = "supervisor.sock"
SUPERVISOR_PIDFILE = "supervisord.pid"
RUN_RAY_PIDFILE = "run-ray.pid"
# `drain` (a preStop hook) writes its pid here before it signals run-ray; run-ray answers with
# RAY_STOPPED once Ray is stopped and waits for that drain to exit before it exits itself.
DRAIN_REQUESTED = "drain-requested"
RAY_STOPPED = "ray-stopped"


class UnsafeDirectory(Exception):
    """A directory that should be private but cannot be made so."""


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one, never a partial write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_role(state_dir: str, role: Role) -> None:
    write_atomic(Path(state_dir) / ROLE_FILE, f"{role.value}\n")


def read_role(state_dir: str) -> Role | None:
    try:
        text = (Path(state_dir) / ROLE_FILE).read_text().strip()
    except OSError:
        return None
    try:
        return Role(text)
    except ValueError:
        return None


def clear_markers(state_dir: str) -> None:
    for name in (SERVE_READY, SERVE_FAILED, SERVE_PROGRESS):
        (Path(state_dir) / name).unlink(missing_ok=True)


def mark(state_dir: str, name: str, text: str) -> None:
    write_atomic(Path(state_dir) / name, text.rstrip("\n") + "\n")


def read_marker(state_dir: str, name: str) -> str | None:
    try:
        return (Path(state_dir) / name).read_text().strip()
    except OSError:
        return None


def private_dirs(values: Settings) -> list[str]:
    """Directories that hold HAProxy's sockets, config and state, and ours."""
    dirs = [
        values.state_dir,
        os.path.dirname(values.socket_path),
        os.path.dirname(values.metrics_socket_path),
        os.path.dirname(values.config_file_loc),
        values.server_state_base,
        os.path.dirname(values.server_state_file),
    ]
    return list(dict.fromkeys(dirs))  # unique, in order


def private_dir_problem(path: str) -> str | None:
    """Why `path` is not a private directory of this user (None if it is, or does not exist)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.getuid():
        return f"{path} belongs to uid {info.st_uid}, not {os.getuid()}"
    if info.st_mode & 0o077:
        return f"{path} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    return None


def ensure_private_dir(path: str) -> None:
    """Creates `path` (and parents) and makes it 0700; refuses shared directories like /tmp."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if path == "/" or info.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(f"{path} is a shared directory; use a dedicated one")
    if info.st_uid != os.getuid():
        raise UnsafeDirectory(f"{path} belongs to uid {info.st_uid}, not {os.getuid()}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
