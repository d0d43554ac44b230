"""`ray-serve-haproxy kuberay`: KubeRay's generated `ray start` parsed, checked and mapped onto
the runtime's settings; the node then renders like a compose node with KubeRay's arguments."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.kuberay import (
    GENERATED_COMMAND_VAR,
    GeneratedCommandError,
    parse_generated_command,
    settings_environment,
)
from ray_serve_haproxy.settings_loader import Role
from ray_serve_haproxy.state_dir import SUPERVISOR_CONF

pytestmark = pytest.mark.unit

# Written the way KubeRay 1.7 writes them (pod.go generateRayStartCommand / convertParamMap:
# "ray start --head" or "ray start", then " --key=value " / " --flag " per sorted key).
HEAD = (
    "ray start --head  --block  --dashboard-agent-listen-port=52365  --dashboard-host=0.0.0.0 "
    " --memory=4294967296  --metrics-export-port=8080  --num-cpus=0 "
)
WORKER = (
    "ray start  --address=serve-cluster-head-svc.default.svc.cluster.local:6379  --block "
    " --dashboard-agent-listen-port=52365  --labels=zone=a,tier=web  --memory=4294967296 "
    " --metrics-export-port=8080  --num-cpus=2  --resources='{\"accel\":1}' "
)


def test_head_command() -> None:
    start = parse_generated_command(HEAD)
    assert start.role == Role.HEAD
    assert start.options["num-cpus"] == "0"
    assert start.options["block"] is None
    assert start.argv("/opt/venv/bin/ray") == [
        "/opt/venv/bin/ray",
        "start",
        "--head",
        "--block",
        "--dashboard-agent-listen-port=52365",
        "--dashboard-host=0.0.0.0",
        "--memory=4294967296",
        "--metrics-export-port=8080",
        "--num-cpus=0",
    ]


def test_worker_command_keeps_every_argument_and_kuberays_quoting() -> None:
    start = parse_generated_command(WORKER)
    assert start.role == Role.WORKER
    assert start.options["address"] == "serve-cluster-head-svc.default.svc.cluster.local:6379"
    # KubeRay single-quotes the resources JSON for the shell: Ray must get it unquoted.
    assert '--resources={"accel":1}' in start.args
    assert "--labels=zone=a,tier=web" in start.args
    assert len(start.args) == 8


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (None, "unset or empty"),
        ("   ", "unset or empty"),
        ("ray stop", "does not begin with `ray start`"),
        ("ulimit -n 65536; ray start --head --block", "does not begin with `ray start`"),
        ("ray start --head --block; echo pwned", "'--block;'"),
        ("ray start --head --block && sleep 1", "'&&'"),
        ("ray start --head --block extra", "'extra'"),
        ("ray start --block", "has neither"),
        ("ray start --head --address=h:6379 --block", "has both"),
        ("ray start --address= --block", "--address has no value"),
        ("ray start --head", "lacks --block"),
        ("ray start --head --block=true", "--block takes no value"),
        ("ray start --head --block --num-cpus=1 --num-cpus=2", "--num-cpus is given twice"),
        ('ray start --head --block --resources=\'{"a": 1}', "not a shell word list"),
    ],
)
def test_refused_commands_name_the_problem(text: str | None, named: str) -> None:
    with pytest.raises(GeneratedCommandError) as raised:
        parse_generated_command(text)
    assert named in str(raised.value)
    assert GENERATED_COMMAND_VAR in str(raised.value)


def test_settings_follow_kuberays_options() -> None:
    env = settings_environment(parse_generated_command(WORKER), {"OTHER": "x"})
    assert env["RSH_HEAD_ADDRESS"] == "serve-cluster-head-svc.default.svc.cluster.local:6379"
    assert env["RSH_NUM_CPUS"] == "2"
    assert env["RSH_METRICS_EXPORT_PORT"] == "8080"
    assert env["RSH_DASHBOARD_AGENT_LISTEN_PORT"] == "52365"
    assert env["OTHER"] == "x"
    assert "RSH_RAY_PORT" not in env  # not in KubeRay's command: the runtime's default stays
    head = settings_environment(parse_generated_command(HEAD), {"RSH_DASHBOARD_HOST": "0.0.0.0"})
    assert head["RSH_DASHBOARD_HOST"] == "0.0.0.0"  # set and equal: fine
    assert head["RSH_NUM_CPUS"] == "0"


def test_settings_that_disagree_or_do_nothing_are_refused() -> None:
    with pytest.raises(GeneratedCommandError) as raised:
        settings_environment(
            parse_generated_command(HEAD),
            {"RSH_NUM_CPUS": "4", "RSH_RAY_START_ARGS": "--num-gpus=1"},
        )
    message = str(raised.value)
    assert "RSH_NUM_CPUS='4': KubeRay's command says --num-cpus=0" in message
    assert "RSH_RAY_START_ARGS='--num-gpus=1': has no effect under KubeRay" in message


@pytest.fixture
def node_env(monkeypatch: pytest.MonkeyPatch, private_paths: dict[str, str]) -> dict[str, str]:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", "/bin/sh")  # exists everywhere
    return private_paths


def ray_argv(state: str) -> list[str]:
    conf = configparser.RawConfigParser()
    conf.read(f"{state}/{SUPERVISOR_CONF}")
    command = shlex.split(conf["program:ray"]["command"].replace("%%", "%"))
    return command[command.index("--") + 1 :]


def test_kuberay_worker_renders_kuberays_ray_start(
    node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GENERATED_COMMAND_VAR, WORKER)
    assert main(["kuberay", "--render-only"]) == 0
    state = node_env["RSH_STATE_DIR"]
    assert (Path(state) / "role").read_text() == "worker\n"
    start = ray_argv(state)
    assert start[1:] == ["start", *parse_generated_command(WORKER).args]
    assert Path(start[0]).name == "ray"
    conf = configparser.RawConfigParser()
    conf.read(f"{state}/{SUPERVISOR_CONF}")
    assert "program:serve-up" not in conf
    assert "run-ray" in conf["program:ray"]["command"]


def test_kuberay_head_runs_serve_up_only_to_deploy_a_config(
    node_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(GENERATED_COMMAND_VAR, HEAD)
    assert main(["kuberay", "--render-only"]) == 0
    state = node_env["RSH_STATE_DIR"]
    assert (Path(state) / "role").read_text() == "head\n"
    assert "--head" in ray_argv(state)
    conf = configparser.RawConfigParser()
    conf.read(f"{state}/{SUPERVISOR_CONF}")
    # KubeRay (serveConfigV2) or `serve deploy` starts Serve with its own HTTP/gRPC options.
    assert "program:serve-up" not in conf
    config = tmp_path / "serve.yaml"
    config.write_text("applications: []\n")
    monkeypatch.setenv("RSH_SERVE_CONFIG", str(config))
    assert main(["kuberay", "--render-only"]) == 0
    conf = configparser.RawConfigParser()
    conf.read(f"{state}/{SUPERVISOR_CONF}")
    serve_up = conf["program:serve-up"]["command"]
    assert f"--config {config}" in serve_up
    # The dashboard KubeRay's command opens is where serve-up talks to it.
    assert "--dashboard-url http://127.0.0.1:8265" in serve_up


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, GENERATED_COMMAND_VAR),
        (
            {GENERATED_COMMAND_VAR: HEAD, "RAY_SERVE_HAPROXY_MAXCONN": "lots"},
            "RAY_SERVE_HAPROXY_MAXCONN",
        ),
        ({GENERATED_COMMAND_VAR: HEAD, "RSH_NUM_CPUS": "3"}, "RSH_NUM_CPUS='3'"),
    ],
)
def test_bad_kuberay_settings_start_nothing(
    node_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    named: str,
) -> None:
    monkeypatch.delenv(GENERATED_COMMAND_VAR, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["kuberay", "--render-only"]) == 2
    assert named in capsys.readouterr().err
    assert not Path(node_env["RSH_STATE_DIR"]).exists()
