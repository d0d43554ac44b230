"""supervisord configuration for head and worker: rendered, then parsed back two ways
(configparser, and supervisor's own option parser, which is what supervisord will run)."""

from __future__ import annotations

import configparser
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ray_serve_haproxy.ray_process import STOP_MARGIN_S
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role
from ray_serve_haproxy.supervisor_config import dashboard_url, render_supervisor_config
from supervisor.datatypes import dict_of_key_value_pairs  # type: ignore[import-untyped]
from supervisor.options import ServerOptions  # type: ignore[import-untyped]

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
PY = "/opt/venv/bin/python"
RAY = "/opt/venv/bin/ray"
HAPROXY_ON = {"RAY_SERVE_ENABLE_HA_PROXY": "1"}


def render(effective: EffectiveSettings, role: Role, pythonpath: str | None = None) -> str:
    return render_supervisor_config(
        effective, role, python=PY, ray=RAY, inherited_pythonpath=pythonpath
    )


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()  # no interpolation: '%%' stays as written
    parser.read_string(text)
    return parser


def argv(parser: configparser.RawConfigParser, section: str) -> list[str]:
    # supervisord un-doubles '%%' and splits the command like a POSIX shell.
    return shlex.split(parser[section]["command"].replace("%%", "%"))


def supervisor_view(text: str, tmp_path: Path) -> dict[str, Any]:
    """Programs as supervisord itself understands the file: name -> process config."""
    state_dir = parse(text)["supervisord"]["childlogdir"]
    Path(state_dir).mkdir(parents=True, exist_ok=True)  # `head` creates it before supervisord
    path = tmp_path / "supervisord.conf"
    path.write_text(text)
    options = ServerOptions()
    options.realize(args=["-c", str(path)])
    return {p.name: p for group in options.process_group_configs for p in group.process_configs}


@pytest.fixture
def head(load: Load) -> EffectiveSettings:
    return load(role=Role.HEAD, **HAPROXY_ON)


@pytest.fixture
def worker(load: Load) -> EffectiveSettings:
    return load(role=Role.WORKER, RSH_HEAD_ADDRESS="head:6379", **HAPROXY_ON)


def test_head_programs_and_commands(head: EffectiveSettings) -> None:
    conf = parse(render(head, Role.HEAD))
    assert {s for s in conf.sections() if s.startswith(("program:", "eventlistener:"))} == {
        "program:ray",
        "program:serve-up",
        "eventlistener:watchdog",
    }  # no syslog receiver: HAProxy writes the container's stdout itself (launcher)
    state = head.values.state_dir
    ray = argv(conf, "program:ray")
    assert ray[:4] == [PY, "-m", "ray_serve_haproxy", "run-ray"]
    assert ray[ray.index("--stop-timeout") + 1] == "25"  # RSH_SHUTDOWN_TIMEOUT_S
    assert ray[ray.index("--state-dir") + 1] == state
    assert ray[ray.index("--haproxy-binary") + 1] == "/usr/local/bin/haproxy"
    # Where run-ray prunes HAProxy directories of earlier Rays (all settings in one dir here).
    hap = head.values.config_file_loc.rsplit("/", 1)[0]
    assert [ray[i + 1] for i, a in enumerate(ray) if a == "--haproxy-dir"] == [hap]
    start = ray[ray.index("--") + 1 :]
    assert start[:4] == [RAY, "start", "--block", "--head"]
    assert "--port=6379" in start
    assert "--dashboard-host=127.0.0.1" in start
    assert "--dashboard-port=8265" in start
    assert "--disable-usage-stats" in start
    assert f"--object-store-memory={int(0.3 * 1024**3)}" in start
    assert not any(a.startswith(("--num-cpus", "--address")) for a in start)

    serve_up = argv(conf, "program:serve-up")
    assert serve_up[3] == "serve-up"
    assert serve_up[serve_up.index("--http-port") + 1] == "8000"
    assert serve_up[serve_up.index("--grpc-port") + 1] == "9000"
    assert serve_up[serve_up.index("--dashboard-url") + 1] == "http://127.0.0.1:8265"
    assert serve_up[serve_up.index("--timeout") + 1] == "300"
    assert "--config" not in serve_up
    assert conf["program:serve-up"]["autorestart"] == "false"
    assert conf["program:serve-up"]["startsecs"] == "0"

    assert argv(conf, "eventlistener:watchdog")[3:] == ["watchdog", "--program", "ray"]


def test_worker_joins_the_head_and_runs_no_serve_up(worker: EffectiveSettings) -> None:
    conf = parse(render(worker, Role.WORKER))
    assert "program:serve-up" not in conf
    start = argv(conf, "program:ray")
    start = start[start.index("--") + 1 :]
    assert start[:3] == [RAY, "start", "--block"]
    assert "--address=head:6379" in start
    head_only = ("--head", "--port", "--dashboard-host", "--dashboard-port", "--ray-client")
    assert not any(a.startswith(head_only) for a in start)


def test_ray_program_stops_within_the_shutdown_timeout_not_hard_stop_after(load: Load) -> None:
    effective = load(
        RSH_SHUTDOWN_TIMEOUT_S="45", RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S="7200", **HAPROXY_ON
    )
    conf = parse(render(effective, Role.HEAD))
    ray = conf["program:ray"]
    assert ray["stopsignal"] == "TERM"
    assert int(ray["stopwaitsecs"]) == 45 + STOP_MARGIN_S
    assert ray["autorestart"] == "false"
    assert argv(conf, "program:ray")[argv(conf, "program:ray").index("--stop-timeout") + 1] == "45"
    # HAProxy still gets its two-hour reload limit, through Ray's environment.
    assert 'RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S="7200"' in conf["supervisord"]["environment"]


def test_syslog_receiver_runs_for_its_explicit_local_target(load: Load) -> None:
    effective = load(
        RAY_SERVE_HAPROXY_SYSLOG_PORT="5140",
        RAY_SERVE_HAPROXY_LOG_TARGET="127.0.0.1:5140",
        **HAPROXY_ON,
    )
    conf = parse(render(effective, Role.HEAD))
    assert argv(conf, "program:syslog")[3:] == [
        *("syslog", "--host", "127.0.0.1", "--port", "5140"),
        *("--output", "/proc/1/fd/1"),  # the container's stdout, not through supervisord
    ]
    programs = supervisor_view(render(effective, Role.HEAD), Path(effective.values.state_dir))
    assert programs["syslog"].priority < programs["ray"].priority


def test_ray_runs_haproxy_through_the_launcher(load: Load) -> None:
    effective = load(RSH_ACCESS_LOG="errors", **HAPROXY_ON)
    env = dict_of_key_value_pairs(parse(render(effective, Role.HEAD))["supervisord"]["environment"])
    assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == "/opt/venv/bin/rsh-haproxy"
    assert env["RSH_HAPROXY_BINARY"] == "/usr/local/bin/haproxy"
    assert env["RSH_ACCESS_LOG"] == "errors"
    assert env["RSH_NO_REPLICA_TIMEOUT_S"] == "10"
    assert env["RAY_SERVE_HAPROXY_LOG_TARGET"] == "stdout"


def test_python_proxy_mode_needs_no_launcher(load: Load) -> None:
    env = dict_of_key_value_pairs(parse(render(load(), Role.HEAD))["supervisord"]["environment"])
    assert "RSH_HAPROXY_BINARY" not in env
    assert env["RAY_SERVE_HAPROXY_BINARY_PATH"] == "/usr/local/bin/haproxy"


def test_environment_carries_effective_ray_settings(load: Load, tmp_path: Path) -> None:
    effective = load(
        role=Role.HEAD,
        RAY_SERVE_HAPROXY_SYSLOG_PORT="5140",
        RAY_SERVE_HAPROXY_LOG_TARGET="127.0.0.1:5140",
        RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="600",
        RSH_PYTHONPATH="/opt/app",
        **HAPROXY_ON,
    )
    text = render(effective, Role.HEAD, pythonpath="/inherited")
    env = dict_of_key_value_pairs(parse(text)["supervisord"]["environment"])
    assert env["RAY_SERVE_HAPROXY_MAXCONN"] == "20000"
    assert env["RAY_SERVE_HAPROXY_NBTHREAD"] == "2"  # derived from facts
    assert env["RAY_SERVE_HAPROXY_LOG_TARGET"] == "127.0.0.1:5140"
    assert env["RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"] == "600"
    assert env["RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S"] == "5"
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["PYTHONPATH"] == "/opt/app:/inherited"
    # The runtime's own variables only for its HAProxy launcher.
    assert {k for k in env if k.startswith("RSH_")} == {
        "RSH_HAPROXY_BINARY",
        "RSH_ACCESS_LOG",
        "RSH_NO_REPLICA_TIMEOUT_S",
    }
    # supervisord hands the same environment to every program.
    programs = supervisor_view(text, tmp_path)
    for name in ("ray", "serve-up", "syslog"):
        assert programs[name].environment["RAY_SERVE_HAPROXY_LOG_TARGET"] == "127.0.0.1:5140"
        assert programs[name].environment["RAY_SERVE_HAPROXY_MAXCONN"] == "20000"


def test_supervisord_accepts_the_file_and_logs_go_to_the_container(
    head: EffectiveSettings, tmp_path: Path
) -> None:
    programs = supervisor_view(render(head, Role.HEAD), tmp_path)
    assert set(programs) == {"ray", "serve-up", "watchdog"}
    for name in ("ray", "serve-up"):
        assert programs[name].stdout_logfile == "/dev/stdout", name
        assert programs[name].stdout_logfile_maxbytes == 0, name
        assert programs[name].stderr_logfile == "/dev/stderr", name
    assert programs["ray"].stopwaitsecs > head.values.shutdown_timeout_s
    assert programs["ray"].priority < programs["serve-up"].priority


def test_control_socket_is_private_and_nothing_listens_on_tcp(head: EffectiveSettings) -> None:
    conf = parse(render(head, Role.HEAD))
    assert "inet_http_server" not in conf
    assert conf["unix_http_server"]["file"] == f"{head.values.state_dir}/supervisor.sock"
    assert conf["unix_http_server"]["chmod"] == "0700"
    assert conf["supervisord"]["nodaemon"] == "true"


def test_no_syslog_receiver_when_logs_go_elsewhere(load: Load) -> None:
    effective = load(RAY_SERVE_HAPROXY_LOG_TARGET="10.1.2.3:514", **HAPROXY_ON)
    conf = parse(render(effective, Role.HEAD))
    assert "program:syslog" not in conf
    env = dict_of_key_value_pairs(conf["supervisord"]["environment"])
    assert env["RAY_SERVE_HAPROXY_LOG_TARGET"] == "10.1.2.3:514"


def test_head_options_and_serve_config(load: Load, tmp_path: Path) -> None:
    config = tmp_path / "serve config.yaml"  # a space survives the round trip
    config.write_text("applications: []\n")
    effective = load(
        RSH_NUM_CPUS="0",
        RSH_DASHBOARD_HOST="0.0.0.0",
        RSH_DASHBOARD_PORT="8300",
        RSH_RAY_PORT="6380",
        RSH_HTTP_PORT="8080",
        RSH_OBJECT_STORE_MEMORY="200000000",
        RSH_SERVE_CONFIG=str(config),
        RSH_RAY_START_ARGS="--resources='{\"edge\": 1}' --labels=a=50%",
        **HAPROXY_ON,
    )
    conf = parse(render(effective, Role.HEAD))
    ray = argv(conf, "program:ray")
    for expected in (
        "--num-cpus=0",
        "--dashboard-host=0.0.0.0",
        "--dashboard-port=8300",
        "--port=6380",
        "--object-store-memory=200000000",
        '--resources={"edge": 1}',
        "--labels=a=50%",
    ):
        assert expected in ray, expected
    serve_up = argv(conf, "program:serve-up")
    assert serve_up[serve_up.index("--config") + 1] == str(config)
    assert serve_up[serve_up.index("--http-port") + 1] == "8080"
    assert serve_up[serve_up.index("--dashboard-url") + 1] == "http://127.0.0.1:8300"


def test_percent_signs_reach_programs_literally(load: Load, tmp_path: Path) -> None:
    effective = load(RSH_RAY_START_ARGS="--labels=load=100%(x)s", **HAPROXY_ON)
    programs = supervisor_view(render(effective, Role.HEAD), tmp_path)
    assert "--labels=load=100%(x)s" in programs["ray"].command


def test_python_proxy_mode_runs_no_syslog_receiver(load: Load) -> None:
    conf = parse(render(load(), Role.HEAD))
    assert "program:syslog" not in conf
    assert (
        dict_of_key_value_pairs(conf["supervisord"]["environment"])["RAY_SERVE_ENABLE_HA_PROXY"]
        == "0"
    )


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8265"),
        ("127.0.0.1", "http://127.0.0.1:8265"),
        ("10.0.0.5", "http://10.0.0.5:8265"),
        ("fd00::5", "http://[fd00::5]:8265"),
    ],
)
def test_dashboard_url(host: str, url: str) -> None:
    assert dashboard_url(host, 8265) == url


def test_a_program_run_by_hand_adopts_what_supervisord_gives_it(
    load: Load, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker compose exec head ray-serve-haproxy serve-up --force` runs without supervisord's
    environment: it gets RSH_PYTHONPATH (also on sys.path, for the gRPC servicer import) and
    Ray's effective settings, and keeps what it already has."""
    import os
    import sys

    from ray_serve_haproxy.supervisor_config import adopt_process_environment

    code = tmp_path / "code"
    code.mkdir()
    effective = load(role=Role.HEAD, RSH_PYTHONPATH=str(code), **HAPROXY_ON)
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    environ.pop("RAY_SERVE_HAPROXY_NBTHREAD", None)
    environ["RAY_SERVE_HAPROXY_MAXCONN"] = "123"
    monkeypatch.setattr(os, "environ", environ)  # nothing leaks into the other tests
    monkeypatch.setattr(sys, "path", list(sys.path))
    adopt_process_environment(effective)
    assert os.environ["PYTHONPATH"] == str(code)
    assert sys.path[0] == str(code)
    assert os.environ["RAY_SERVE_HAPROXY_NBTHREAD"]  # derived: only in supervisord's environment
    assert os.environ["RAY_SERVE_HAPROXY_MAXCONN"] == "123"
