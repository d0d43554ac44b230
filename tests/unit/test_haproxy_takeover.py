"""Taking over from an HAProxy a dead HAProxyManager left behind: which config serves routes,
which processes are left over, the arguments HAProxy gets, the launcher's config choice, and
run-ray's bound on an HAProxy nothing took over."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy import haproxy_takeover as takeover
from ray_serve_haproxy.access_log import MARKER, AccessLogMode
from ray_serve_haproxy.haproxy_launcher import prepare
from ray_serve_haproxy.orphan_watch import OrphanWatch
from ray_serve_haproxy.processes import haproxy_by_parent

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"
# Ray 2.60's config of a head with two apps, and of a new HAProxyManager before its routes came.
SERVING = (DATA / "ray_haproxy.cfg").read_text()
NO_ROUTES = (DATA / "ray_haproxy_no_routes.cfg").read_text()
Spawn = Callable[..., subprocess.Popen[bytes]]


def test_a_config_with_routes_serves_and_a_new_managers_first_one_does_not() -> None:
    assert takeover.serves_routes(SERVING)
    assert not takeover.serves_routes(NO_ROUTES)
    no_replicas = SERVING.replace('string "success"', 'string "No replicas are available yet."')
    assert not takeover.serves_routes(no_replicas)


def test_the_admin_socket_is_the_one_that_hands_its_listeners_over() -> None:
    socket = takeover.admin_socket(SERVING)
    assert socket is not None and socket.startswith("/tmp/haproxy-serve/")
    assert socket.endswith("/admin.sock")
    assert takeover.admin_socket(NO_ROUTES) is not None
    assert takeover.admin_socket(SERVING.replace(" expose-fd listeners", "")) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # A new manager's first start: soft-stop the leftovers, take their sockets.
        (["-db", "-f", "c"], ["-db", "-f", "c", "-sf", "7", "8", "-x", "/s"]),
        (["-db", "-f", "c", "-dR"], ["-db", "-f", "c", "-dR", "-sf", "7", "8", "-x", "/s"]),
        # Ray's own reload: its pids first, the leftovers after them, its -x kept.
        (
            ["-db", "-f", "c", "-sf", "5", "6", "-x", "/r"],
            ["-db", "-f", "c", "-sf", "5", "6", "7", "8", "-x", "/r"],
        ),
        # Already listed: not twice.
        (["-db", "-f", "c", "-sf", "7"], ["-db", "-f", "c", "-sf", "7", "8", "-x", "/s"]),
    ],
)
def test_takeover_arguments(args: list[str], expected: list[str]) -> None:
    assert takeover.takeover_args(args, [7, 8], "/s") == expected


def test_without_an_answering_socket_haproxy_binds_itself() -> None:
    assert takeover.takeover_args(["-f", "c"], [7], None) == ["-f", "c", "-sf", "7"]
    assert takeover.takeover_args(["-f", "c"], [], "/s") == ["-f", "c"]


def test_socket_answers_only_when_something_listens(short_tmp: Path) -> None:
    import socket

    path = str(short_tmp / "admin.sock")
    assert not takeover.socket_answers(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        assert takeover.socket_answers(path)


def test_leftovers_are_the_config_s_haproxy_another_process_started(
    tmp_path: Path, fake_haproxy: tuple[str, Spawn]
) -> None:
    binary, spawn = fake_haproxy
    config = str(tmp_path / "node" / "haproxy.cfg")
    mine = spawn(False, "-db", "-f", config)
    spawn(False, "-db", "-f", config + ".other")  # another config: another HAProxy's
    # Started by this process: the manager's own (Ray lists those in -sf itself).
    assert takeover.leftover_haproxy(config, binary, parent=os.getpid()) == []
    # Seen from a new manager: left over.
    assert takeover.leftover_haproxy(config, binary, parent=1) == [mine.pid]
    assert takeover.leftover_haproxy(config, "/usr/sbin/other-haproxy", parent=1) == []


def _node_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return path


def _prepare(path: Path, taking_over: bool) -> tuple[str, bool]:
    prepared = prepare(str(path), AccessLogMode.ALL, os.devnull, taking_over=taking_over)
    assert prepared.stdout_fd is None  # this config logs to 127.0.0.1:514, not stdout
    return prepared.text, prepared.resumed


def test_launcher_keeps_the_last_config_that_served_routes(tmp_path: Path) -> None:
    path = _node_config(tmp_path, SERVING)
    text, resumed = _prepare(path, taking_over=False)
    assert not resumed and text.startswith(MARKER)
    saved = Path(takeover.saved_path(str(path)))
    assert saved.read_text() == path.read_text() == text
    # A config without routes is started, never kept.
    path.write_text(NO_ROUTES)
    text, resumed = _prepare(path, taking_over=False)
    assert not resumed and not takeover.serves_routes(text)
    assert takeover.serves_routes(saved.read_text())


def test_taking_over_starts_the_last_served_routes_not_an_empty_config(tmp_path: Path) -> None:
    path = _node_config(tmp_path, SERVING)
    served, _ = _prepare(path, taking_over=False)
    path.write_text(NO_ROUTES)  # the new manager's first config
    text, resumed = _prepare(path, taking_over=True)
    assert resumed and text == served == path.read_text()
    # Ray's config with routes wins over the saved one.
    changed = SERVING.replace("hard-stop-after 20s", "hard-stop-after 30s")
    path.write_text(changed)
    text, resumed = _prepare(path, taking_over=True)
    assert not resumed and "hard-stop-after 30s" in text


def test_taking_over_with_nothing_saved_starts_ray_s_config(tmp_path: Path) -> None:
    path = _node_config(tmp_path, NO_ROUTES)
    text, resumed = _prepare(path, taking_over=True)
    assert not resumed and not takeover.serves_routes(text)


# --- run-ray's bound on an HAProxy no manager took over ---------------------------------------


def test_haproxy_without_a_ray_worker_parent_are_orphaned(
    fake_haproxy: tuple[str, Spawn],
) -> None:
    binary, spawn = fake_haproxy
    proc = spawn(False)
    # Its parent is pytest, not a `ray::` worker.
    assert haproxy_by_parent(binary) == ([], [proc.pid])
    assert haproxy_by_parent("/usr/sbin/other-haproxy") == ([], [])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Found:
    """What haproxy_by_parent would find: (managed pids, orphaned pids)."""

    def __init__(self, orphaned: list[int]) -> None:
        self.managed: list[int] = []
        self.orphaned = orphaned

    def __call__(self, _binary: str | None) -> tuple[list[int], list[int]]:
        return list(self.managed), list(self.orphaned)


def _orphan(
    fake_haproxy: tuple[str, Spawn], ignore_usr1: bool = False
) -> tuple[subprocess.Popen[bytes], Clock, Found, OrphanWatch]:
    """A stand-in HAProxy the watch finds orphaned, the watch's clock and finder, the watch."""
    binary, spawn = fake_haproxy
    proc = spawn(ignore_usr1)
    clock, found = Clock(), Found([proc.pid])
    return proc, clock, found, OrphanWatch(binary, grace_s=120, clock=clock, find=found)


def test_an_orphan_nothing_took_over_gets_its_soft_stop_after_the_grace_period(
    fake_haproxy: tuple[str, Spawn],
) -> None:
    proc, clock, _found, watch = _orphan(fake_haproxy)
    assert watch.poll() == []
    clock.now = 119.0
    assert watch.poll() == []
    clock.now = 120.0
    assert watch.poll() == [(proc.pid, "no HAProxyManager for 120s")]
    assert proc.wait(timeout=10) == -signal.SIGUSR1  # the stand-in has no SIGUSR1 handler
    clock.now = 125.0
    assert watch.poll() == []  # reported once


def test_a_taken_over_orphan_gets_its_soft_stop_repeated_at_once(
    fake_haproxy: tuple[str, Spawn],
) -> None:
    # Ignores SIGUSR1: still there at the next look.
    proc, clock, found, watch = _orphan(fake_haproxy, ignore_usr1=True)
    assert watch.poll() == []
    clock.now = 30.0
    found.managed = [4242]  # the new manager's HAProxy runs: it took over
    assert watch.poll() == [(proc.pid, "taken over by the new manager's HAProxy")]
    clock.now = 35.0
    assert watch.poll() == []  # signalled again, reported once
    found.orphaned = []  # it finished
    assert watch.poll() == []
    assert watch.stopping == set()


def test_an_orphan_seen_again_later_gets_a_new_grace_period(
    fake_haproxy: tuple[str, Spawn],
) -> None:
    proc, clock, found, watch = _orphan(fake_haproxy)
    watch.poll()
    clock.now = 100.0
    found.orphaned = []
    assert watch.poll() == []
    found.orphaned = [proc.pid]
    clock.now = 150.0
    assert watch.poll() == []
    clock.now = 270.0
    assert watch.poll() == [(proc.pid, "no HAProxyManager for 120s")]
