"""`ray start` command lines, and run-ray / drain with a fake `ray` and fake HAProxy processes
(copies of real binaries named `haproxy`, so /proc/<pid>/exe matches like the real one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy import ray_process
from ray_serve_haproxy.processes import haproxy_processes, is_alive
from ray_serve_haproxy.ray_process import drain, ray_start_argv, run_ray
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role
from ray_serve_haproxy.state_dir import DRAIN_REQUESTED, RAY_STOPPED, RUN_RAY_PIDFILE

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]


def test_head_argv(load: Load) -> None:
    values = load(RSH_NUM_CPUS="0", RSH_RAY_START_ARGS="--include-dashboard=true").values
    assert ray_start_argv(values, Role.HEAD, "ray") == [
        "ray",
        "start",
        "--block",
        "--head",
        "--port=6379",
        "--dashboard-host=127.0.0.1",
        "--dashboard-port=8265",
        "--ray-client-server-port=10001",
        "--min-worker-port=10002",
        "--max-worker-port=19999",
        "--dashboard-agent-listen-port=52365",
        "--num-cpus=0",
        f"--object-store-memory={int(0.3 * 1024**3)}",
        "--disable-usage-stats",
        "--include-dashboard=true",
    ]


def test_worker_argv(load: Load) -> None:
    values = load(role=Role.WORKER, RSH_HEAD_ADDRESS="10.0.0.2:6380").values
    assert ray_start_argv(values, Role.WORKER, "ray") == [
        "ray",
        "start",
        "--block",
        "--address=10.0.0.2:6380",
        "--min-worker-port=10002",
        "--max-worker-port=19999",
        "--dashboard-agent-listen-port=52365",
        f"--object-store-memory={int(0.3 * 1024**3)}",
        "--disable-usage-stats",
    ]


def test_network_settings_become_ray_start_options(load: Load) -> None:
    values = load(
        role=Role.WORKER,
        RSH_HEAD_ADDRESS="10.0.0.2:6379",
        RSH_NODE_IP="10.0.0.7",
        RSH_NODE_MANAGER_PORT="6380",
        RSH_OBJECT_MANAGER_PORT="6381",
        RSH_MIN_WORKER_PORT="11000",
        RSH_MAX_WORKER_PORT="11999",
        RSH_METRICS_EXPORT_PORT="8080",
        RSH_DASHBOARD_AGENT_GRPC_PORT="8266",
        RSH_DASHBOARD_AGENT_LISTEN_PORT="52366",
        RSH_RUNTIME_ENV_AGENT_PORT="8267",
    ).values
    argv = ray_start_argv(values, Role.WORKER, "ray")
    assert argv[3:15] == [
        "--address=10.0.0.2:6379",
        "--node-ip-address=10.0.0.7",
        "--node-manager-port=6380",
        "--object-manager-port=6381",
        "--metrics-export-port=8080",
        "--dashboard-agent-grpc-port=8266",
        "--runtime-env-agent-port=8267",
        "--min-worker-port=11000",
        "--max-worker-port=11999",
        "--dashboard-agent-listen-port=52366",
        f"--object-store-memory={int(0.3 * 1024**3)}",
        "--disable-usage-stats",
    ], argv


@pytest.fixture
def fake_ray(tmp_path: Path) -> tuple[str, Path]:
    """A `ray` that records `ray stop ...` calls in a log file."""
    log = tmp_path / "ray-calls.log"
    script = tmp_path / "ray"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import sys
            with open({str(log)!r}, "a") as f:
                f.write(" ".join(sys.argv[1:]) + "\\n")
            """
        )
    )
    script.chmod(0o755)
    return str(script), log


def sleeper_command(tmp_path: Path) -> list[str]:
    """Stands in for `ray start --block`: runs until terminated."""
    marker = tmp_path / "started"
    return [sys.executable, "-c", f"import time; open({str(marker)!r}, 'w'); time.sleep(120)"]


def test_haproxy_processes_match_by_executable(
    fake_haproxy: tuple[str, Callable[..., subprocess.Popen[bytes]]],
) -> None:
    binary, spawn = fake_haproxy
    proc = spawn(False)
    assert haproxy_processes(binary) == [proc.pid]
    assert proc.pid not in haproxy_processes("/usr/sbin/not-our-haproxy")


def test_run_ray_cleans_up_before_and_after(
    tmp_path: Path,
    fake_ray: tuple[str, Path],
    fake_haproxy: tuple[str, Callable[..., subprocess.Popen[bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray, calls = fake_ray
    binary, spawn = fake_haproxy
    monkeypatch.setattr(ray_process, "HAPROXY_SOFT_STOP_GRACE_S", 1)
    monkeypatch.setattr(ray_process, "WITHDRAW_S", 0.5)
    orphan = spawn(True)  # left from a previous run, ignores the soft stop: must be killed
    state = tmp_path / "state"
    state.mkdir()
    started = tmp_path / "started"
    seen: dict[str, object] = {}
    # HAProxy directories of three earlier Rays on this node (oldest first).
    haproxy_dir = tmp_path / "haproxy-serve"
    earlier = [haproxy_dir / (f"{i}" * 56) for i in range(3)]
    for age, node_dir in enumerate(reversed(earlier)):
        node_dir.mkdir(parents=True)
        (node_dir / "admin.sock.7.1.stderr.log").write_text("warning\n")
        os.utime(node_dir, (time.time() - 100 * (age + 1),) * 2)

    def during_run() -> None:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen["node_dirs_at_start"] = sorted(p.name for p in haproxy_dir.iterdir())
        seen["orphan_gone_before_start"] = orphan.poll() is not None
        seen["pidfile"] = (state / RUN_RAY_PIDFILE).read_text().strip()
        seen["serving"] = spawn(True)  # the HAProxy Ray starts: must not survive the stop
        os.kill(os.getpid(), signal.SIGTERM)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    helper = threading.Thread(target=during_run)
    helper.start()
    try:
        code = run_ray(
            sleeper_command(tmp_path),
            stop_timeout_s=12,
            haproxy_binary=binary,
            state_dir=str(state),
            ray=ray,
            ray_alive=lambda: True,
            haproxy_dirs=[str(haproxy_dir)],
        )
    finally:
        helper.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert code == 0
    assert seen["node_dirs_at_start"] == [earlier[-1].name]  # the newest earlier one kept
    assert seen["orphan_gone_before_start"] is True
    assert seen["pidfile"] == str(os.getpid())
    assert not (state / RUN_RAY_PIDFILE).exists()
    # The serving HAProxy ignores its soft stop: it drains for 12 - 10 s, then Ray gets the rest
    # of the budget (less `ray start`'s exit and the CLI's start-up), gracefully, not --force.
    assert calls.read_text().splitlines() == ["stop --grace-period=4"]
    serving = seen["serving"]
    assert isinstance(serving, subprocess.Popen)
    assert serving.wait(5) == -signal.SIGKILL
    assert haproxy_processes(binary) == []


def test_run_ray_returns_when_ray_exits_by_itself(
    tmp_path: Path, fake_ray: tuple[str, Path]
) -> None:
    ray, calls = fake_ray
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = run_ray(
            [sys.executable, "-c", "raise SystemExit(3)"],
            stop_timeout_s=5,
            haproxy_binary=str(tmp_path / "no-haproxy"),
            state_dir=str(tmp_path),
            ray=ray,
            ray_alive=lambda: True,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert code == 3
    assert not calls.exists()  # nothing to stop


def test_drain_without_run_ray_stops_ray_itself(
    load: Load,
    fake_ray: tuple[str, Path],
    fake_haproxy: tuple[str, Callable[..., subprocess.Popen[bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray, calls = fake_ray
    binary, spawn = fake_haproxy
    monkeypatch.setattr(ray_process, "HAPROXY_SOFT_STOP_GRACE_S", 1)
    monkeypatch.setattr(ray_process, "WITHDRAW_S", 0.5)
    leftover = spawn(False)  # dies on SIGUSR1, HAProxy's soft stop
    values = load(RAY_SERVE_HAPROXY_BINARY_PATH=binary, RSH_SHUTDOWN_TIMEOUT_S="12").values
    assert drain(values, ray=ray) == 0
    # HAProxy withdrawn for 0.5 s, then drained at once (it exits on SIGUSR1): `ray stop` gets
    # the 11.5 s left less the reserves.
    assert calls.read_text().splitlines() == ["stop --grace-period=5"]
    assert leftover.wait(5) == -signal.SIGUSR1


def test_drain_signals_run_ray(load: Load, fake_ray: tuple[str, Path]) -> None:
    ray, calls = fake_ray
    values = load().values
    Path(values.state_dir).mkdir(parents=True)
    # A process whose command line says run-ray, standing in for supervisord's program.
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "run-ray"])
    try:
        (Path(values.state_dir) / RUN_RAY_PIDFILE).write_text(f"{stand_in.pid}\n")
        waiter = threading.Thread(target=stand_in.wait)  # reap it, like supervisord would
        waiter.start()
        assert drain(values, ray=ray) == 0
        waiter.join(5)
        assert stand_in.returncode == -signal.SIGTERM
        assert not is_alive(stand_in.pid)
        assert not calls.exists()  # run-ray does the stopping, not drain
    finally:
        stand_in.kill()
        stand_in.wait()


def test_drain_returns_when_run_ray_says_ray_stopped(load: Load, tmp_path: Path) -> None:
    """The handshake: drain leaves its pid, run-ray (here a stand-in that stays alive, as run-ray
    does while it waits for the drain) answers RAY_STOPPED, and drain returns at once."""
    values = load().values
    state = Path(values.state_dir)
    state.mkdir(parents=True)
    stand_in = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import pathlib, signal, time
                state = pathlib.Path({str(state)!r})
                def stopped(*_):
                    # What run-ray does once Ray is stopped, if a drain asked for it.
                    if (state / {DRAIN_REQUESTED!r}).read_text().strip():
                        (state / {RAY_STOPPED!r}).write_text("")
                signal.signal(signal.SIGTERM, stopped)
                time.sleep(30)
                """
            ),
            "run-ray",
        ]
    )
    try:
        (state / RUN_RAY_PIDFILE).write_text(f"{stand_in.pid}\n")
        time.sleep(0.5)  # its signal handler is in place
        started = time.monotonic()
        assert drain(values) == 0
        assert time.monotonic() - started < 5
        assert (state / DRAIN_REQUESTED).read_text().strip() == str(os.getpid())
        assert is_alive(stand_in.pid)  # drain did not wait for run-ray's exit
    finally:
        stand_in.kill()
        stand_in.wait()


def test_run_ray_waits_for_the_drain_to_exit_before_it_exits(tmp_path: Path) -> None:
    drain_stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.7)"])
    (tmp_path / DRAIN_REQUESTED).write_text(f"{drain_stand_in.pid}\n")
    reaper = threading.Thread(target=drain_stand_in.wait)  # its parent reaps it, as the shim does
    reaper.start()
    ray_process._let_the_drain_exit_first(tmp_path)
    assert (tmp_path / RAY_STOPPED).exists()
    assert not is_alive(drain_stand_in.pid)
    reaper.join(5)
    # No drain asked: nothing is written and nothing waited for.
    other = tmp_path / "other"
    other.mkdir()
    ray_process._let_the_drain_exit_first(other)
    assert not (other / RAY_STOPPED).exists()


def test_run_ray_ends_when_the_raylet_disappears(
    tmp_path: Path, fake_ray: tuple[str, Path]
) -> None:
    # `ray stop` from elsewhere: daemons exit with SIGTERM and `ray start --block` keeps
    # looping, so run-ray watches the raylet itself.
    ray, calls = fake_ray
    answers = iter([False, True, True] + [False] * 100)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    start = time.monotonic()
    try:
        code = run_ray(
            sleeper_command(tmp_path),
            stop_timeout_s=10,
            haproxy_binary=str(tmp_path / "no-haproxy"),
            state_dir=str(tmp_path),
            ray=ray,
            ray_alive=lambda: next(answers),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert code == 1
    assert time.monotonic() - start < 15
    assert calls.read_text().splitlines() == ["stop --grace-period=4"]  # remnants, if any


@pytest.fixture
def timed_ray(tmp_path: Path) -> tuple[str, Path]:
    """A `ray` that records when each call came: "<time.monotonic()> <args>"."""
    log = tmp_path / "ray-times.log"
    script = tmp_path / "timed-ray"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import sys, time
            with open({str(log)!r}, "a") as f:
                f.write(f"{{time.monotonic()}} {{' '.join(sys.argv[1:])}}\\n")
            """
        )
    )
    script.chmod(0o755)
    return str(script), log


def test_shutdown_lets_haproxy_finish_its_requests_before_ray_stops(
    tmp_path: Path,
    timed_ray: tuple[str, Path],
    fake_haproxy: tuple[str, Callable[..., subprocess.Popen[bytes]]],
) -> None:
    ray, calls = timed_ray
    binary, _ = fake_haproxy
    # Stands in for an HAProxy that finishes a request 2 s after its soft stop (SIGUSR1).
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTTOU, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGUSR1, lambda *_: (time.sleep(2), sys.exit(0)))\n"
        "print('up', flush=True)\ntime.sleep(120)\n"
    )
    busy = subprocess.Popen([binary, "-c", code], stdout=subprocess.PIPE)
    try:
        assert busy.stdout is not None and busy.stdout.readline() == b"up\n"
        start = time.monotonic()
        ray_process.graceful_stop(ray, 20, binary)
        took = time.monotonic() - start
        assert busy.wait(1) == 0, "HAProxy was killed instead of finishing its request"
    finally:
        busy.kill()
        busy.wait()
    (stamp, args), *more = (line.split(" ", 1) for line in calls.read_text().splitlines())
    assert not more and args.startswith("stop --grace-period=")
    assert float(stamp) - start >= 2, "`ray stop` ran while HAProxy was still serving"
    assert took < 20


def test_shutdown_kills_a_busy_haproxy_within_the_budget(
    tmp_path: Path,
    timed_ray: tuple[str, Path],
    fake_haproxy: tuple[str, Callable[..., subprocess.Popen[bytes]]],
) -> None:
    ray, calls = timed_ray
    binary, spawn = fake_haproxy
    stuck = spawn(True)  # a request that outlives the budget: soft stop ignored
    budget = 11
    start = time.monotonic()
    ray_process.graceful_stop(ray, budget, binary)
    took = time.monotonic() - start
    assert stuck.wait(5) == -signal.SIGKILL
    (stamp, args), *more = (line.split(" ", 1) for line in calls.read_text().splitlines())
    # Drained for budget - RAY_STOP_RESERVE_S, then `ray stop` with what is left.
    assert not more and args == "stop --grace-period=4"
    assert budget - 10 <= float(stamp) - start < budget - 10 + 1
    assert took < budget


def test_stop_haproxy_withdraws_before_the_soft_stop(
    tmp_path: Path,
    fake_haproxy: tuple[str, Callable[..., subprocess.Popen[bytes]]],
) -> None:
    """SIGTTOU (release the listeners, keep serving) first, SIGUSR1 (soft stop) after the
    withdrawal: balancers in front see refused checks before connections are closed."""
    from ray_serve_haproxy.processes import stop_haproxy

    binary, _ = fake_haproxy
    log = tmp_path / "signals"
    code = textwrap.dedent(
        f"""\
        import signal, sys, time
        def note(name):
            with open({str(log)!r}, "a") as f:
                f.write(f"{{name}} {{time.monotonic():.3f}}\\n")
        signal.signal(signal.SIGTTOU, lambda *_: note("TTOU"))
        def usr1(*_):
            note("USR1")
            sys.exit(0)
        signal.signal(signal.SIGUSR1, usr1)
        print("up", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([binary, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        assert stop_haproxy(binary, grace_s=5, withdraw_s=0.5, log=False) == [proc.pid]
        assert proc.wait(5) == 0
        (ttou, ttou_at), (usr1, usr1_at) = (line.split() for line in log.read_text().splitlines())
        assert (ttou, usr1) == ("TTOU", "USR1")
        assert float(usr1_at) - float(ttou_at) >= 0.45
    finally:
        proc.kill()
        proc.wait()
