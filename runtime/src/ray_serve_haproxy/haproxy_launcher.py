"""`rsh-haproxy`: the HAProxy executable the runtime hands Ray (RAY_SERVE_HAPROXY_BINARY_PATH).

Ray's HAProxyManager writes <dir>/<node id>/haproxy.cfg, then runs `<binary> -db -f <config>
...` on every start and reload. This launcher, in between:
  1. applies RSH_ACCESS_LOG to that file (access_log.py), under Ray's own lock on it, lets
     HAProxy close idle HTTP/2 connections soon after a reload (h2_idle_close.py) and bounds
     the wait of a request that finds no replica UP (fallback_bound.py);
  2. when the log target is `stdout`, points HAProxy's standard output at the container's
     (RSH_CONTAINER_STDOUT, PID 1's stdout), so HAProxy writes the access log itself: no
     syslog round trip, no relay process. Ray sends HAProxy's stdout to a file per reload,
     which stays empty: HAProxy prints its warnings on stderr;
  3. puts HAProxy in its own process group and takes over from an HAProxy a dead manager left
     behind (haproxy_takeover.py): `-sf`/`-x` for it, its last served config if Ray's has no
     routes yet;
  4. replaces itself with the real HAProxy (RSH_HAPROXY_BINARY), same pid, Ray's arguments
     (plus those of step 3), so Ray and the runtime see the process they expect.
A config it cannot edit (another Ray version) is used as Ray wrote it, with a warning on the
container's stderr: the node serves, only the access-log mode and the HTTP/2 idle close do not
apply.

Only the standard library, access_log.py, h2_idle_close.py, fallback_bound.py and
haproxy_takeover.py are imported, and few of them: this runs on every HAProxy start, so every
import adds to the time a reload takes.
"""

from __future__ import annotations

import fcntl
import os
import sys

from . import fallback_bound, h2_idle_close
from . import haproxy_takeover as takeover
from .access_log import AccessLogMode, TemplateChanged, access_log_target, edit_config

CONTAINER_STDOUT = "/proc/1/fd/1"
CONTAINER_STDERR = "/proc/1/fd/2"


class Prepared:
    """What HAProxy starts with. A plain class: typing.NamedTuple would slow every start."""

    __slots__ = ("resumed", "stdout_fd", "text")

    def __init__(self, stdout_fd: int | None, text: str, resumed: bool) -> None:
        self.stdout_fd = stdout_fd  # the container's stdout, when HAProxy should log there
        self.text = text  # the config HAProxy starts with
        self.resumed = resumed  # the last config served with routes, not the one Ray wrote


def warn(message: str) -> None:
    """To HAProxy's stderr (Ray's per-reload file) and to the container's, where people look."""
    line = f"rsh-haproxy: {message}\n"
    sys.stderr.write(line)
    sys.stderr.flush()
    try:
        with open(os.environ.get("RSH_CONTAINER_STDERR", CONTAINER_STDERR), "a") as err:
            err.write(line)
    except OSError:
        pass


def config_path(args: list[str]) -> str | None:
    """The file after `-f` (Ray passes exactly one)."""
    for i, arg in enumerate(args[:-1]):
        if arg == "-f":
            return args[i + 1]
    return None


def _write_atomically(path: str, text: str, like: str | None = None) -> None:
    """Replaces `path` with `text`, with the permissions of `like` (default: `path`)."""
    # Not tempfile: importing it would add a fifth to every HAProxy start.
    tmp = os.path.join(os.path.dirname(path) or ".", f".rsh-haproxy-{os.getpid()}.cfg")
    mode = os.stat(like or path).st_mode & 0o777
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def no_replica_timeout_s() -> int:
    """RSH_NO_REPLICA_TIMEOUT_S as the runtime validated and exported it; 0 (no bound, with a
    warning) for anything else, which only a hand-made environment can hold."""
    raw = os.environ.get(fallback_bound.ENV, "0").strip()
    if raw.isdigit():
        return int(raw)
    warn(
        f"{fallback_bound.ENV}={raw!r} is not a whole number of seconds: requests that find no "
        "replica are not bounded"
    )
    return 0


def prepare(path: str, mode: AccessLogMode, stdout_path: str, taking_over: bool) -> Prepared:
    """Edits the config at `path` (access log; when `taking_over` from a dead manager's HAProxy
    with a config that has no routes yet, the last config served with routes instead) and keeps
    a copy of it when it serves routes."""
    # Ray writes the file holding an exclusive flock on <config>.lock: never read it half-written.
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with open(path) as f:
            text = f.read()
        resumed = False
        if taking_over and not takeover.serves_routes(text):
            saved = _read(takeover.saved_path(path))
            if saved is not None and takeover.serves_routes(saved):
                text, resumed = saved, True
        stdout_fd = None
        if access_log_target(text) == "stdout":
            try:
                stdout_fd = os.open(stdout_path, os.O_WRONLY | os.O_APPEND)
            except OSError as exc:
                # Never let the access log grow Ray's per-reload stdout file instead.
                warn(f"cannot open {stdout_path} ({exc}): access log off, HAProxy events only")
                mode = AccessLogMode.OFF
        try:
            edited = edit_config(text, mode)
            closing = h2_idle_close.edit(edited.text)
            bounded = fallback_bound.edit(closing, no_replica_timeout_s())
            changed = edited.changed or bounded != edited.text
            text = bounded
        except TemplateChanged as exc:
            warn(f"{path}: used as Ray wrote it (access log {mode.value} not applied): {exc}")
            changed = False
        if changed or resumed:
            _write_atomically(path, text)
        if takeover.serves_routes(text):
            _write_atomically(takeover.saved_path(path), text, like=path)
    return Prepared(stdout_fd, text, resumed)


def main() -> None:
    """Never returns: execs HAProxy, or exits 2 when it cannot."""
    args = sys.argv[1:]
    binary = os.environ.get("RSH_HAPROXY_BINARY", "")
    if not binary or not os.access(binary, os.X_OK):
        sys.stderr.write(
            f"rsh-haproxy: RSH_HAPROXY_BINARY={binary!r} is not an executable file; "
            "allowed: the path of the real HAProxy (the runtime sets it)\n"
        )
        sys.exit(2)
    raw_mode = os.environ.get("RSH_ACCESS_LOG", AccessLogMode.ALL.value).strip().lower()
    try:
        mode = AccessLogMode(raw_mode)
    except ValueError:
        warn(f"RSH_ACCESS_LOG={raw_mode!r} is not all, errors or off: using `all`")
        mode = AccessLogMode.ALL
    # Out of the HAProxyManager's process group, which Ray kills when the manager dies: HAProxy
    # finishes what it has and serves on until a new manager takes over (haproxy_takeover.py).
    os.setpgid(0, 0)
    path = config_path(args)
    if path is not None:
        leftover = takeover.leftover_haproxy(path, binary, os.getppid())
        socket = None
        try:
            stdout = os.environ.get("RSH_CONTAINER_STDOUT", CONTAINER_STDOUT)
            prepared = prepare(path, mode, stdout, taking_over=bool(leftover))
            socket = takeover.admin_socket(prepared.text) if leftover else None
            if socket is not None and not takeover.socket_answers(socket):
                socket = None
            if prepared.stdout_fd is not None:
                os.dup2(prepared.stdout_fd, 1)
                os.close(prepared.stdout_fd)
        except (OSError, TemplateChanged) as exc:
            warn(f"{path}: used as Ray wrote it: {exc}")
            prepared = None
        if leftover:
            resumed = " with the last routes it served" if prepared and prepared.resumed else ""
            warn(f"taking over{resumed} from HAProxy {leftover}, left by a manager that died")
            args = takeover.takeover_args(args, leftover, socket)
    os.execv(binary, [binary, *args])
