"""Ray's node process: the `ray start` command line, the `run-ray` wrapper, graceful stop.

`run-ray` is supervisord's Ray program. It exists for what `ray start --block` does not
do in a container:
  - before starting, kill HAProxy processes of ours left from an earlier run: they would hold
    :8000 for a Ray that is gone, on a stale config;
  - while Ray runs, see an HAProxy whose HAProxyManager died through its soft stop
    (orphan_watch.py);
  - on SIGTERM, stop the node within RSH_SHUTDOWN_TIMEOUT_S: first withdraw HAProxy from
    whatever balances over the nodes (it releases its ports, so the entry's checks fail and
    traffic moves to other nodes), then drain it (requests in flight finish), then a plain
    `ray stop` (graceful; `--force` leaves HAProxy running and holding its ports), then kill
    whatever is left. HAProxy's own `hard-stop-after` (how long a process replaced by a reload
    may serve) plays no part here, so it can be as long as the longest request while the node
    still stops in time.
`drain` (preStop hooks) takes the same path: it signals run-ray, or stops Ray itself when Ray
was not started by the runtime (e.g. KubeRay's own `ray start`). The container ends when run-ray
does, killing whatever still runs in it: a drain that has not exited by then reports 137, a
failed hook. So run-ray tells a waiting drain that Ray is stopped and lets it exit first.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from .haproxy_files import prune_stale_node_dirs
from .orphan_watch import OrphanWatch
from .processes import drain_haproxy, is_alive, pids_by_comm, stop_haproxy, wait_gone
from .settings import RAY_STOP_RESERVE_S, Settings
from .settings_loader import Role
from .state_dir import DRAIN_REQUESTED, RAY_STOPPED, RUN_RAY_PIDFILE, write_atomic
from .value_types import Password

REDIS_PASSWORD_FLAG = "--redis-password"

# Time for `ray start --block` itself to exit once `ray stop` took its daemons. Short: on
# SIGTERM, Ray 2.60's `ray start` first asks the GCS to drain the node, which on a stopped head
# only waits for an RPC timeout.
CHILD_EXIT_GRACE_S = 3
# Time HAProxy processes left from an earlier run get after SIGUSR1 before SIGKILL.
HAPROXY_SOFT_STOP_GRACE_S = 5
# The `ray` CLI's own start-up, on top of the grace period `ray stop` is given.
RAY_CLI_STARTUP_S = 3
# Polls (0.5 s apart) without a raylet, after one was seen, before run-ray calls Ray gone.
RAYLET_GONE_POLLS = 6
# How long a stopping node's HAProxy only refuses new connections before its soft stop: longer
# than a balancer in front needs to take the node out (the entry: 2 checks 1 s apart).
WITHDRAW_S = 3
# Polls (0.5 s apart) between looks for HAProxy without a manager (orphan_watch.py): a scan
# of /proc, kept out of every poll for the idle node's sake.
ORPHAN_POLLS = 10
# What a stop may take beyond RSH_SHUTDOWN_TIMEOUT_S (`ray start` exiting, the process table
# settling): supervisord's stopwaitsecs and the orchestrator's grace period add at least this.
STOP_MARGIN_S = 5
# How long run-ray waits, once Ray is stopped, for the drain that asked for it to exit.
DRAIN_HANDOVER_S = 5.0


def log(message: str) -> None:
    print(f"ray-serve-haproxy: {message}", flush=True)


def ray_executable() -> str:
    """`ray` of the interpreter running us (the image's venv), else the one on PATH."""
    sibling = os.path.join(os.path.dirname(sys.executable), "ray")
    if os.access(sibling, os.X_OK):
        return sibling
    return shutil.which("ray") or "ray"


def ray_start_argv(values: Settings, role: Role, ray: str | None = None) -> list[str]:
    """`ray start --block ...` for this node's role."""
    argv = [ray or ray_executable(), "start", "--block"]
    if role == Role.HEAD:
        argv += [
            "--head",
            f"--port={values.ray_port}",
            f"--dashboard-host={values.dashboard_host}",
            f"--dashboard-port={values.dashboard_port}",
        ]
        argv.append(f"--ray-client-server-port={values.ray_client_server_port}")
    else:
        if values.head_address is None:
            raise ValueError("a worker needs RSH_HEAD_ADDRESS")
        argv.append(f"--address={values.head_address}")
    if role == Role.HEAD and values.redis_password is not None:
        # Ray reads the Redis password from its command line only (no variable for it).
        argv.append(f"{REDIS_PASSWORD_FLAG}={values.redis_password}")
    argv += _network_args(values)
    if values.num_cpus is not None:
        argv.append(f"--num-cpus={values.num_cpus}")
    argv += [
        f"--object-store-memory={values.object_store_memory}",
        "--disable-usage-stats",
        *values.ray_start_args,
    ]
    return argv


def masked(argv: list[str]) -> str:
    """argv as one line for the log, a Redis password (`--redis-password[=]X`) replaced."""
    shown: list[str] = []
    for arg in argv:
        if shown and shown[-1] == REDIS_PASSWORD_FLAG:
            arg = Password.MASK
        elif arg.startswith(f"{REDIS_PASSWORD_FLAG}="):
            arg = f"{REDIS_PASSWORD_FLAG}={Password.MASK}"
        shown.append(arg)
    return " ".join(shown)


def _network_args(values: Settings) -> list[str]:
    """The node's address and Ray's ports: always the worker range and the agent's HTTP port
    (Ray's defaults unless set), the others only when set (unset: Ray picks a free port)."""
    args = [] if values.node_ip is None else [f"--node-ip-address={values.node_ip}"]
    optional = (
        ("--node-manager-port", values.node_manager_port),
        ("--object-manager-port", values.object_manager_port),
        ("--metrics-export-port", values.metrics_export_port),
        ("--dashboard-agent-grpc-port", values.dashboard_agent_grpc_port),
        ("--runtime-env-agent-port", values.runtime_env_agent_port),
    )
    args += [f"{option}={port}" for option, port in optional if port is not None]
    return [
        *args,
        f"--min-worker-port={values.min_worker_port}",
        f"--max-worker-port={values.max_worker_port}",
        f"--dashboard-agent-listen-port={values.dashboard_agent_listen_port}",
    ]


def graceful_stop(
    ray: str,
    budget_s: int,
    haproxy_binary: str | None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Stops this node within `budget_s`: withdraw and drain HAProxy, `ray stop`, then kill what
    is left. HAProxy goes first: `ray stop` would take it down with its HAProxyManager, requests
    in flight and all."""
    deadline = clock() + budget_s
    drain_s = budget_s - RAY_STOP_RESERVE_S
    started = clock()
    found, busy = drain_haproxy(haproxy_binary, drain_s, withdraw_s=min(WITHDRAW_S, drain_s / 2))
    if busy:
        log(f"HAProxy {busy} still serving after {drain_s}s of draining; stopping Ray anyway")
    elif found:
        log(f"HAProxy {found} drained (requests in flight finished) in {clock() - started:.1f}s")
    remaining = deadline - clock() - CHILD_EXIT_GRACE_S
    grace = max(1, round(remaining) - RAY_CLI_STARTUP_S)
    log(f"stopping Ray gracefully (`ray stop`, grace period {grace}s)")
    try:
        subprocess.run(
            [ray, "stop", f"--grace-period={grace}"], timeout=max(1.0, remaining), check=False
        )
    except subprocess.TimeoutExpired:
        log("`ray stop` overran the shutdown budget; forcing")
        try:
            subprocess.run(
                [ray, "stop", "--force"], timeout=max(1.0, deadline - clock()), check=False
            )
        except subprocess.TimeoutExpired:
            log("`ray stop --force` timed out too")
    # Whatever HAProxy is left already had its soft stop: kill it so nothing holds the ports.
    stop_haproxy(haproxy_binary, grace_s=0)


def _end_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(CHILD_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def raylet_running() -> bool:
    return bool(pids_by_comm(["raylet"])["raylet"])


def run_ray(
    command: list[str],
    *,
    stop_timeout_s: int,
    haproxy_binary: str | None,
    state_dir: str,
    ray: str | None = None,
    ray_alive: Callable[[], bool] = raylet_running,
    haproxy_dirs: list[str] | None = None,
) -> int:
    """Runs `command` (`ray start --block ...`) until it exits or SIGTERM asks us to stop.

    `ray start --block` keeps running when Ray's daemons exit with SIGTERM (e.g. a `ray stop`
    from elsewhere), so run-ray also ends once the raylet it saw is gone: a node without Ray
    should stop, not linger.
    """
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(f"received {signal.Signals(signum).name}")
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pidfile = Path(state_dir) / RUN_RAY_PIDFILE
    handshake = [Path(state_dir) / name for name in (DRAIN_REQUESTED, RAY_STOPPED)]
    for stale in handshake:
        stale.unlink(missing_ok=True)
    pidfile.write_text(f"{os.getpid()}\n")
    try:
        if stop_haproxy(haproxy_binary, grace_s=2):
            log("stopped HAProxy processes left from an earlier run")
        # No HAProxy of ours runs now: per-node directories of earlier Rays are stale.
        for stale in prune_stale_node_dirs(haproxy_dirs or []):
            log(f"removed {stale} (HAProxy files of an earlier Ray on this node)")
        if stop_requested.is_set():
            return 0
        log(f"starting: {masked(command)}")
        child = subprocess.Popen(command)
        seen_raylet, missing = False, 0
        orphans, polls = OrphanWatch(haproxy_binary), 0
        while not stop_requested.wait(0.5):
            polls += 1
            if polls % ORPHAN_POLLS == 0:
                for pid, why in orphans.poll():
                    log(f"soft-stopping HAProxy {pid} whose HAProxyManager died: {why}")
            code = child.poll()
            if code is not None:
                log(f"`ray start` exited with status {code}; cleaning up")
                # Its HAProxy may outlive Ray (orphaned when Ray's processes were killed) and
                # still route to replicas on other nodes: let the balancers in front move away,
                # then let it finish the requests in flight.
                stop_haproxy(haproxy_binary, grace_s=stop_timeout_s, withdraw_s=WITHDRAW_S)
                return code or 1  # Ray is meant to run until stopped
            if ray_alive():
                seen_raylet, missing = True, 0
            elif seen_raylet:
                missing += 1
                if missing >= RAYLET_GONE_POLLS:
                    log("Ray's raylet is gone (stopped from outside?); cleaning up")
                    graceful_stop(ray or ray_executable(), stop_timeout_s, haproxy_binary)
                    _end_child(child)
                    return 1
        graceful_stop(ray or ray_executable(), stop_timeout_s, haproxy_binary)
        _end_child(child)
        log("Ray stopped")
        _let_the_drain_exit_first(Path(state_dir))
        return 0
    finally:
        pidfile.unlink(missing_ok=True)
        for path in handshake:
            path.unlink(missing_ok=True)


def _let_the_drain_exit_first(state_dir: Path) -> None:
    """When a `drain` asked for this stop, tells it Ray is stopped and waits (a few seconds at
    most) until it has exited: the container ends with run-ray and would kill it mid-exit."""
    try:
        drain_pid = int((state_dir / DRAIN_REQUESTED).read_text().strip())
    except (OSError, ValueError):
        return
    write_atomic(state_dir / RAY_STOPPED, "")
    if wait_gone([drain_pid], DRAIN_HANDOVER_S):
        log(f"the drain (pid {drain_pid}) has not exited {DRAIN_HANDOVER_S:.0f}s after Ray stopped")


def _run_ray_pid(state_dir: str) -> int | None:
    try:
        pid = int((Path(state_dir) / RUN_RAY_PIDFILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"run-ray" in cmdline and is_alive(pid) else None


def drain(values: Settings, ray: str | None = None) -> int:
    """Graceful stop for preStop hooks; the same path as run-ray's SIGTERM handling."""
    budget = values.shutdown_timeout_s
    pid = _run_ray_pid(values.state_dir)
    if pid is not None:
        state_dir = Path(values.state_dir)
        try:
            write_atomic(state_dir / DRAIN_REQUESTED, f"{os.getpid()}\n")
        except OSError as exc:  # then only run-ray's exit tells us; still a graceful stop
            log(f"cannot write {state_dir / DRAIN_REQUESTED}: {exc}")
        log(f"asking run-ray (pid {pid}) to stop Ray")
        os.kill(pid, signal.SIGTERM)
        # Done when run-ray says Ray is stopped (it then waits for this process to exit), or
        # when run-ray is gone (an older run-ray, or one that ended another way).
        deadline = time.monotonic() + budget + STOP_MARGIN_S
        while not (state_dir / RAY_STOPPED).exists() and is_alive(pid):
            if time.monotonic() >= deadline:
                log(f"run-ray (pid {pid}) did not stop in {budget + STOP_MARGIN_S}s")
                return 1
            time.sleep(0.1)
        log("drained")
        return 0
    graceful_stop(ray or ray_executable(), budget, values.haproxy_binary_path or None)
    log("drained")
    return 0
