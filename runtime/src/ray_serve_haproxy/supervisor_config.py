"""Renders supervisord's configuration for a head or a worker node.

Every decision (programs, their command lines, Ray's environment) is made here, so the rendered
file says exactly what runs; the programs themselves (run-ray, syslog, serve-up, watchdog) only
do what their arguments tell them.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping

from .haproxy_files import haproxy_base_dirs
from .ray_process import STOP_MARGIN_S, ray_executable, ray_start_argv
from .rendering import template_environment
from .settings_loader import EffectiveSettings, Role

# Dashboard hosts that the runtime reaches on loopback from inside the container.
_LOCAL_BIND_HOSTS = ("0.0.0.0", "::", "127.0.0.1", "localhost")


CONTAINER_STDOUT = "/proc/1/fd/1"
LAUNCHER = "rsh-haproxy"


def _escape_percent(text: str) -> str:
    # supervisord expands %(name)s in these values; a literal % must be doubled.
    return text.replace("%", "%%")


def sv(text: object) -> str:
    """A plain value (path, number) for the config file."""
    value = str(text)
    if "\n" in value:
        raise ValueError(f"newline in supervisord value {value!r}")
    return _escape_percent(value)


def sv_command(argv: list[str]) -> str:
    """argv as supervisord's `command=` (split with shlex by supervisord)."""
    return sv(shlex.join(argv))


def sv_env(env: Mapping[str, str]) -> str:
    """KEY="value",... as supervisord's `environment=`, one per (continuation) line; its
    parser has no escape for quotes."""
    parts = []
    for key, value in env.items():
        if '"' in value or "\n" in value:
            raise ValueError(
                f"{key}: a double quote or newline cannot be passed through supervisord"
            )
        parts.append(f'{key}="{_escape_percent(value)}"')
    return "".join(f"\n    {part}," for part in parts).rstrip(",")


def dashboard_url(host: str, port: int) -> str:
    """Where programs in this container reach the head's dashboard (REST API)."""
    if host in _LOCAL_BIND_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def haproxy_launcher(python: str) -> str:
    """`rsh-haproxy` (haproxy_launcher.py), installed beside the runtime's interpreter."""
    return os.path.join(os.path.dirname(python), LAUNCHER)


def process_environment(
    effective: EffectiveSettings,
    inherited_pythonpath: str | None = None,
    *,
    launcher: str | None = None,
) -> dict[str, str]:
    """Ray's environment: every Ray-facing effective value, plus RSH_PYTHONPATH in front.

    In HAProxy mode Ray runs `launcher`, which applies the access-log mode to the config Ray
    wrote and then runs the real HAProxy (RSH_HAPROXY_BINARY)."""
    env = effective.ray_env()
    paths = [p for p in (effective.values.pythonpath, inherited_pythonpath) if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    binary = effective.values.haproxy_binary_path
    if launcher and effective.values.enable_ha_proxy and binary:
        env["RSH_HAPROXY_BINARY"] = binary
        env["RSH_ACCESS_LOG"] = effective.values.access_log
        env["RSH_NO_REPLICA_TIMEOUT_S"] = str(effective.values.no_replica_timeout_s)
        env["RAY_SERVE_HAPROXY_BINARY_PATH"] = launcher
    return env


def adopt_process_environment(effective: EffectiveSettings) -> None:
    """Gives this process what supervisord gives its programs, where it lacks it: for a program
    run by hand (`docker compose exec head ray-serve-haproxy serve-up --force`), Ray's effective
    settings and RSH_PYTHONPATH, on sys.path too (serve-up imports gRPC servicer functions)."""
    for name, value in process_environment(effective, os.environ.get("PYTHONPATH")).items():
        os.environ.setdefault(name, value)
    for path in reversed((effective.values.pythonpath or "").split(os.pathsep)):
        if path and path not in sys.path:
            sys.path.insert(0, path)


def _runtime(python: str, *args: str) -> list[str]:
    return [python, "-m", "ray_serve_haproxy", *args]


def render_supervisor_config(
    effective: EffectiveSettings,
    role: Role,
    *,
    python: str | None = None,
    ray: str | None = None,
    inherited_pythonpath: str | None = None,
    ray_start: list[str] | None = None,
    with_serve_up: bool | None = None,
) -> str:
    """`ray_start`: the `ray start --block ...` to run (KubeRay's); default: built from the
    settings (ray_process.ray_start_argv). `with_serve_up`: run serve-up; default: on the head."""
    values = effective.values
    python = python or sys.executable
    ray = ray or ray_executable()

    run_ray = ["run-ray", "--stop-timeout", str(values.shutdown_timeout_s)]
    run_ray += ["--state-dir", values.state_dir, "--ray", ray]
    if values.haproxy_binary_path:
        run_ray += ["--haproxy-binary", values.haproxy_binary_path]
    if values.enable_ha_proxy:
        for directory in haproxy_base_dirs(values):
            run_ray += ["--haproxy-dir", directory]
    ray_command = _runtime(
        python, *run_ray, "--", *(ray_start or ray_start_argv(values, role, ray))
    )

    syslog_port = effective.syslog_receiver_port
    syslog_command = (
        # Straight to PID 1's (tini's) stdout, the container's: relaying every access-log line
        # through supervisord cost a tenth of a core at 3,500 requests/s.
        _runtime(
            python,
            *("syslog", "--host", "127.0.0.1", "--port", str(syslog_port)),
            *("--output", CONTAINER_STDOUT),
        )
        if syslog_port is not None
        else None
    )

    serve_up_command = None
    if role == Role.HEAD if with_serve_up is None else with_serve_up:
        serve_up = ["serve-up", "--http-port", str(values.http_port)]
        serve_up += ["--grpc-port", str(values.grpc_port)]
        serve_up += ["--dashboard-url", dashboard_url(values.dashboard_host, values.dashboard_port)]
        serve_up += ["--state-dir", values.state_dir]
        serve_up += ["--timeout", str(values.serve_deploy_timeout_s)]
        if values.serve_config:
            serve_up += ["--config", values.serve_config]
        serve_up_command = _runtime(python, *serve_up)

    env = template_environment(sv=sv, sv_command=sv_command, sv_env=sv_env)
    template = env.get_template("supervisord.conf.j2")
    return template.render(
        role=role.value,
        state_dir=values.state_dir,
        environment=process_environment(
            effective, inherited_pythonpath, launcher=haproxy_launcher(python)
        ),
        watchdog_command=_runtime(python, "watchdog", "--program", "ray"),
        syslog_command=syslog_command,
        ray_command=ray_command,
        ray_stopwaitsecs=values.shutdown_timeout_s + STOP_MARGIN_S,
        serve_up_command=serve_up_command,
    )


def render_entry_supervisor_config(
    effective: EffectiveSettings, *, python: str | None = None
) -> str:
    """supervisord for the entry: its HAProxy and the watchdog, no Ray."""
    from .entry import haproxy_argv

    values = effective.values
    python = python or sys.executable
    env = template_environment(sv=sv, sv_command=sv_command)
    return env.get_template("supervisord-entry.conf.j2").render(
        state_dir=values.state_dir,
        watchdog_command=_runtime(python, "watchdog", "--program", "haproxy"),
        haproxy_command=haproxy_argv(values),
        # Like a node's stop: the soft stop lets requests in flight finish for at most
        # RSH_SHUTDOWN_TIMEOUT_S (hard-stop-after may be far longer), then supervisord kills.
        stopwaitsecs=values.shutdown_timeout_s,
        # Certificate renewal (tls_watch.py), only with TLS on.
        tls_watch_command=[python, "-m", "ray_serve_haproxy.tls_watch"]
        if values.entry_tls_cert
        else None,
    )
