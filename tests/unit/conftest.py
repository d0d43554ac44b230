"""Shared fixtures for the runtime's unit tests (no Docker, no Ray cluster)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role, load_settings

DATA = Path(__file__).resolve().parent / "data"
GIB = 1024**3


def free_tcp_port() -> int:
    """A free 127.0.0.1 port outside the default replica ranges, which lie inside Linux's
    ephemeral range (32768-60999): a random free port there fails the settings' own checks."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not (30000 <= port <= 31000 or 40000 <= port <= 41000):
            return port


@pytest.fixture(name="free_tcp_port")
def free_tcp_port_fixture() -> Callable[[], int]:
    return free_tcp_port


@pytest.fixture
def facts() -> HostFacts:
    """A 2-CPU container with 1 GiB of /dev/shm, the image's HAProxy, 1048576 open files."""
    return HostFacts(
        cpus=2, shm_bytes=GIB, haproxy_binary="/usr/local/bin/haproxy", nofile_hard=1048576
    )


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path: a UNIX socket path has at most ~100 bytes, and
    Ray adds a 56-character node id to the admin socket's directory."""
    path = Path(tempfile.mkdtemp(prefix="rsh", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# A token that passes every check (64 hex digits, like Ray's and scripts/ray-token.sh's).
GOOD_TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A good token in a file only its owner may read, as a Docker or Kubernetes secret."""
    path = tmp_path / "ray_token"
    path.write_text(GOOD_TOKEN + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def private_paths(tmp_path: Path, short_tmp: Path, token_file: Path) -> dict[str, str]:
    """Every path setting in temporary directories, so tests never touch /tmp/haproxy-serve,
    and the token file (the default /run/secrets/ray_token does not exist here)."""
    hap = short_tmp / "hap"
    return {
        "RAY_AUTH_TOKEN_PATH": str(token_file),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": f"{hap}/haproxy.cfg",
        "RAY_SERVE_HAPROXY_SOCKET_PATH": f"{hap}/admin.sock",
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": f"{hap}/metrics.sock",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": f"{hap}",
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": f"{hap}/server-state",
        "RSH_STATE_DIR": f"{tmp_path}/state",
    }


@pytest.fixture
def load(facts: HostFacts, private_paths: dict[str, str]) -> Callable[..., EffectiveSettings]:
    """load(VAR=value, ..., role=None): settings from exactly these variables plus tmp paths."""

    def _load(role: Role | None = None, **env: str) -> EffectiveSettings:
        return load_settings({**private_paths, **env}, role=role, facts=facts)

    return _load


@pytest.fixture
def fake_haproxy(tmp_path: Path) -> Iterator[tuple[str, Callable[..., subprocess.Popen[bytes]]]]:
    """(binary, spawn): spawn(ignore_usr1, *args) runs a process whose exe is the fake binary
    (a copy of this Python, so /proc/<pid>/exe matches like the real one) and whose command line
    ends with `args` (e.g. HAProxy's `-f <config>`)."""
    binary = tmp_path / "bin" / "haproxy"
    binary.parent.mkdir()
    shutil.copy(os.path.realpath(sys.executable), binary)
    probe = subprocess.run([str(binary), "-c", "pass"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"a copied python cannot run here: {probe.stderr[-200:]!r}")
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(ignore_usr1: bool, *args: str) -> subprocess.Popen[bytes]:
        # HAProxy handles SIGTTOU (release the listeners); the default action would stop us.
        code = "import signal, time\nsignal.signal(signal.SIGTTOU, signal.SIG_IGN)\n"
        if ignore_usr1:
            code += "signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
        code += "print('up', flush=True)\ntime.sleep(120)\n"
        proc = subprocess.Popen([str(binary), "-c", code, *args], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        procs.append(proc)
        return proc

    yield str(binary), spawn
    for proc in procs:
        proc.kill()
        proc.wait()
