"""The settings model: every variable's default, overrides, refusals, translations, errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.settings import Settings, specs
from ray_serve_haproxy.settings_loader import (
    EffectiveSettings,
    InvalidSettings,
    Role,
    Source,
    load_settings,
)

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]

# The defaults as the guide (and, for the rest, Ray 2.60 / the contract) give them. Written out
# here rather than read from settings/, so a changed default fails a test.
EXPECTED_DEFAULTS: dict[str, Any] = {
    "RAY_SERVE_ENABLE_HA_PROXY": False,
    "RAY_SERVE_HAPROXY_MAXCONN": 20000,  # the guide's, not Ray's 4096
    "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": 16384,  # Ray's; raise for large headers (docs/switching)
    "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": 3600,
    "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": None,
    "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S": 5,  # the deliberate deviation from the guide
    "RSH_NO_REPLICA_TIMEOUT_S": 10,  # a request finding no replica: docs/latency-and-retries.md
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL": 2,
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE": 2,
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER": "5s",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER": "250ms",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER": "250ms",
    "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": "/tmp/haproxy-serve/haproxy.cfg",
    "RAY_SERVE_HAPROXY_SOCKET_PATH": "/tmp/haproxy-serve/admin.sock",
    "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": "/tmp/haproxy-serve",
    "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": "/tmp/haproxy-serve/server-state",
    "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": "/tmp/haproxy-serve/metrics.sock",
    "RAY_SERVE_HAPROXY_METRICS_PORT": 9101,
    "RAY_SERVE_HAPROXY_STATS_PORT": 8404,
    "RAY_SERVE_HAPROXY_SYSLOG_PORT": 514,
    "RSH_ACCESS_LOG": "errors",  # chosen from the benchmark's CPU per request
    "RAY_SERVE_HAPROXY_METRICS_ENABLED": True,  # Ray's default
    "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": 30000,
    "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": 31000,
    "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": 40000,
    "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": 41000,
    "RSH_HEAD_ADDRESS": None,
    "RSH_RAY_PORT": 6379,
    "RSH_HTTP_PORT": 8000,
    "RSH_GRPC_PORT": 9000,
    "RSH_GRPC_SERVICER_FUNCTIONS": (),
    "RSH_DASHBOARD_HOST": "127.0.0.1",
    "RSH_DASHBOARD_PORT": 8265,
    "RSH_NUM_CPUS": None,
    "RSH_SERVE_CONFIG": None,
    "RSH_SERVE_DEPLOY_TIMEOUT_S": 300,
    "RSH_SHUTDOWN_TIMEOUT_S": 25,  # fits compose's stop_grace_period 30s and Kubernetes' 30 s
    "RSH_STATE_DIR": "/tmp/ray-serve-haproxy",
    "RSH_RAY_START_ARGS": (),
    "RSH_PYTHONPATH": None,
    # Node address and Ray's ports: Ray's own defaults (None: Ray picks a free port).
    "RSH_NODE_IP": None,
    "RSH_NODE_MANAGER_PORT": None,
    "RSH_OBJECT_MANAGER_PORT": None,
    "RSH_MIN_WORKER_PORT": 10002,
    "RSH_MAX_WORKER_PORT": 19999,
    "RSH_METRICS_EXPORT_PORT": None,
    "RSH_DASHBOARD_AGENT_GRPC_PORT": None,
    "RSH_DASHBOARD_AGENT_LISTEN_PORT": 52365,
    "RSH_RUNTIME_ENV_AGENT_PORT": None,
    "RSH_RAY_CLIENT_SERVER_PORT": 10001,
    "RAY_AUTH_MODE": "token",  # on unless disabled by name (Ray's own default is off)
    "RAY_AUTH_TOKEN_PATH": "/run/secrets/ray_token",
    "RAY_AUTH_TOKEN": None,
    # GCS fault tolerance: Ray's own variables and defaults (off unless asked for).
    "RAY_gcs_storage": "memory",
    "RAY_gcs_storage_path": None,
    "RAY_REDIS_ADDRESS": None,
    "RSH_REDIS_PASSWORD": None,
    "RAY_external_storage_namespace": None,
    "RAY_gcs_rpc_server_reconnect_timeout_s": 60,
    "RAY_kill_child_processes_on_worker_exit": "false",
    # The entry.
    "RSH_ENTRY_NODES": None,
    "RSH_ENTRY_METRICS_HOST": "127.0.0.1",
    "RSH_ENTRY_SLOTS": 16,
    "RSH_ENTRY_CHECK_INTER": "1s",
    "RSH_ENTRY_CHECK_FALL": 2,
    "RSH_ENTRY_CHECK_RISE": 2,
    "RSH_ENTRY_CONNECT_TIMEOUT": "500ms",
    "RSH_ENTRY_TIMEOUT_HTTP_REQUEST_S": 10,
    "RSH_ENTRY_TIMEOUT_KEEP_ALIVE_S": 90,
    "RSH_ENTRY_BUFFER_REQUEST_BODY": True,
    "RSH_ENTRY_H2_MAX_CONCURRENT_STREAMS": 100,
    "RSH_ENTRY_H2_GLITCHES_THRESHOLD": 1000,
    "RSH_ENTRY_LOG_ERRORS_PER_CONNECTION": 10,
    "RSH_ENTRY_MAX_BAD_REQUESTS_PER_CONNECTION": 1000,
    "RSH_ENTRY_PER_CLIENT_MAXCONN": 0,
    # Entry TLS (tests/unit/test_entry_tls.py): off unless RSH_ENTRY_TLS_CERT is set.
    "RSH_ENTRY_TLS_CERT": None,
    "RSH_ENTRY_TLS_KEY": None,
    "RSH_ENTRY_TLS_ISSUER_CA": None,
    "RSH_ENTRY_TLS_SERVER_NAMES": (),
    "RSH_ENTRY_HTTPS_PORT": 8443,
    "RSH_ENTRY_GRPC_TLS_PORT": 9443,
    "RSH_ENTRY_PLAIN_HTTP": None,
    "RSH_ENTRY_TLS_REDIRECT_PORT": None,
    "RSH_ENTRY_HSTS_MAX_AGE_S": None,
    "RSH_ENTRY_TLS_CLIENT_CA": None,
    "RSH_ENTRY_TLS_WARN_DAYS": 14,
}
DERIVED = {
    "RAY_SERVE_HAPROXY_NBTHREAD",
    "RAY_SERVE_HAPROXY_BINARY_PATH",
    "RAY_SERVE_HAPROXY_LOG_TARGET",
    "RSH_OBJECT_STORE_MEMORY",
    "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
}
GUIDE_VARIABLES = {
    "RAY_SERVE_ENABLE_HA_PROXY",
    "RAY_SERVE_HAPROXY_MAXCONN",
    "RAY_SERVE_HAPROXY_NBTHREAD",
    "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S",
    "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S",
    "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S",
    "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER",
    "RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER",
    "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
    "RAY_SERVE_HAPROXY_SOCKET_PATH",
    "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
    "RAY_SERVE_HAPROXY_SERVER_STATE_FILE",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_HAPROXY_SYSLOG_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT",
    "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT",
}
RAY_260_EXTRAS = {
    "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_LOG_TARGET",
    "RAY_SERVE_HAPROXY_BINARY_PATH",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED",
}


def value_of(effective: EffectiveSettings, variable: str) -> Any:
    for name, spec in specs():
        if spec.env == variable:
            return getattr(effective.values, name)
    raise KeyError(variable)


def errors_of(load: Load, role: Role | None = None, /, **env: str) -> list[str]:
    with pytest.raises(InvalidSettings) as caught:
        load(role=role, **env)
    return [str(e) for e in caught.value.errors]


# --- coverage and defaults --------------------------------------------------------------------


def test_every_guide_variable_and_ray_260_extra_is_declared() -> None:
    declared = {spec.env for _, spec in specs()}
    assert declared >= GUIDE_VARIABLES, GUIDE_VARIABLES - declared
    assert declared >= RAY_260_EXTRAS, RAY_260_EXTRAS - declared
    assert declared == set(EXPECTED_DEFAULTS) | DERIVED


def test_every_default(facts: HostFacts) -> None:
    # No token file at the default path here: the defaults themselves are what is tested.
    effective = load_settings({}, facts=facts, check_token=False)
    for variable, expected in EXPECTED_DEFAULTS.items():
        assert value_of(effective, variable) == expected, variable
        assert effective.sources[variable] == Source.DEFAULT, variable
    for variable in DERIVED:
        assert effective.sources[variable] == Source.DERIVED, variable


def test_derived_defaults(facts: HostFacts) -> None:
    effective = load_settings({}, facts=facts, check_token=False)
    assert effective.values.nbthread == 2  # the 2 CPUs of `facts`
    assert effective.values.haproxy_binary_path == "/usr/local/bin/haproxy"
    assert effective.values.log_target == "stdout"  # the container's, through the launcher
    assert effective.values.object_store_memory == int(0.3 * 1024**3)
    # No server timeout: the client timeout (3600) + Serve's 90 s keep-alive.
    assert effective.values.hard_stop_after_s == 3690


def test_timeout_connect_deviation_is_documented_in_its_description() -> None:
    spec = next(s for _, s in specs() if s.env == "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S")
    assert spec.default == 5
    assert "retry-on conn-failure" in spec.description and "redispatch" in spec.description
    assert "guide" in spec.description


# --- valid overrides --------------------------------------------------------------------------

OVERRIDES: list[tuple[str, str, Any]] = [
    ("RAY_SERVE_ENABLE_HA_PROXY", "1", True),
    ("RAY_SERVE_HAPROXY_MAXCONN", "4096", 4096),
    ("RAY_SERVE_HAPROXY_NBTHREAD", "8", 8),
    ("RAY_SERVE_HAPROXY_BINARY_PATH", "/bin/sh", "/bin/sh"),  # any executable file
    ("RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S", "300", 300),
    ("RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S", "600", 600),
    ("RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S", "0", 0),
    ("RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S", "30", 30),
    ("RSH_SHUTDOWN_TIMEOUT_S", "80", 80),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL", "3", 3),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE", "5", 5),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER", "2s", "2s"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER", "100ms", "100ms"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER", "1m", "1m"),
    ("RAY_SERVE_HAPROXY_METRICS_PORT", "9102", 9102),
    ("RAY_SERVE_HAPROXY_STATS_PORT", "8405", 8405),
    ("RAY_SERVE_HAPROXY_SYSLOG_PORT", "5140", 5140),
    ("RAY_SERVE_HAPROXY_LOG_TARGET", "10.0.0.9:514", "10.0.0.9:514"),
    ("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "30500", 30500),
    ("RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT", "32000", 32000),
    ("RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT", "40500", 40500),
    ("RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT", "42000", 42000),
    ("RSH_HEAD_ADDRESS", "head:6379", "head:6379"),
    ("RSH_HEAD_ADDRESS", "ray_head.net:6380", "ray_head.net:6380"),
    ("RSH_RAY_PORT", "6380", 6380),
    ("RSH_HTTP_PORT", "8080", 8080),
    ("RSH_GRPC_PORT", "9001", 9001),
    ("RSH_GRPC_PORT", "0", 0),
    (
        "RSH_GRPC_SERVICER_FUNCTIONS",
        " a_pb2_grpc.add_AServicer_to_server, pkg.b_pb2_grpc:add_B_to_server,",
        ("a_pb2_grpc.add_AServicer_to_server", "pkg.b_pb2_grpc:add_B_to_server"),
    ),
    ("RSH_DASHBOARD_HOST", "0.0.0.0", "0.0.0.0"),
    ("RSH_DASHBOARD_PORT", "8266", 8266),
    ("RSH_NUM_CPUS", "0", 0),
    ("RSH_OBJECT_STORE_MEMORY", "200000000", 200000000),
    ("RSH_SERVE_DEPLOY_TIMEOUT_S", "60", 60),
    (
        "RSH_RAY_START_ARGS",
        "--resources='{\"x\": 1}' --include-log-monitor=false",
        ('--resources={"x": 1}', "--include-log-monitor=false"),
    ),
    ("RSH_PYTHONPATH", "/opt/app:/opt/lib", "/opt/app:/opt/lib"),
]


@pytest.mark.parametrize(("variable", "raw", "expected"), OVERRIDES, ids=[o[0] for o in OVERRIDES])
def test_valid_override(load: Load, variable: str, raw: str, expected: Any) -> None:
    effective = load(**{variable: raw})
    assert value_of(effective, variable) == expected
    assert effective.sources[variable] == Source.ENVIRONMENT


def test_path_overrides(load: Load, tmp_path: Path, short_tmp: Path) -> None:
    hap = short_tmp / "other"
    config = tmp_path / "serve.yaml"
    config.write_text("applications: []\n")
    effective = load(
        RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=f"{hap}/cfg/haproxy.cfg",
        RAY_SERVE_HAPROXY_SOCKET_PATH=f"{hap}/sock/admin.sock",
        RAY_SERVE_HAPROXY_SERVER_STATE_BASE=f"{hap}/state",
        RAY_SERVE_HAPROXY_SERVER_STATE_FILE=f"{hap}/state/server-state",
        RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=f"{hap}/metrics/m.sock",
        RSH_STATE_DIR=f"{tmp_path}/rsh",
        RSH_SERVE_CONFIG=str(config),
    )
    assert effective.values.config_file_loc == f"{hap}/cfg/haproxy.cfg"
    assert effective.values.socket_path == f"{hap}/sock/admin.sock"
    assert effective.values.server_state_base == f"{hap}/state"
    assert effective.values.server_state_file == f"{hap}/state/server-state"
    assert effective.values.metrics_socket_path == f"{hap}/metrics/m.sock"
    assert effective.values.state_dir == f"{tmp_path}/rsh"
    assert effective.values.serve_config == str(config)


def test_empty_variable_counts_as_unset(load: Load) -> None:
    effective = load(RAY_SERVE_HAPROXY_MAXCONN="", RAY_SERVE_HAPROXY_NBTHREAD=" ")
    assert effective.values.maxconn == 20000
    assert effective.sources["RAY_SERVE_HAPROXY_MAXCONN"] == Source.DEFAULT
    assert effective.sources["RAY_SERVE_HAPROXY_NBTHREAD"] == Source.DERIVED


# --- refusals, one per kind of invalid value --------------------------------------------------

INVALID: list[tuple[str, str, str]] = [
    ("RAY_SERVE_HAPROXY_MAXCONN", "abc", "not an integer"),
    ("RAY_SERVE_HAPROXY_MAXCONN", "0", "out of range"),
    ("RAY_SERVE_HAPROXY_MAXCONN", "2.5", "not an integer"),
    ("RAY_SERVE_HAPROXY_NBTHREAD", "65", "out of range"),
    ("RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S", "-5", "out of range"),
    ("RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S", "30s", "whole number of seconds"),
    ("RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S", "-1", "out of range"),
    ("RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S", "0", "out of range"),
    ("RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S", "2147484", "out of range"),
    ("RSH_SHUTDOWN_TIMEOUT_S", "9", "out of range"),
    ("RSH_SHUTDOWN_TIMEOUT_S", "30s", "whole number of seconds"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL", "0", "out of range"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE", "x", "not an integer"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER", "5", "5ms"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER", "250", "no unit"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER", "5sec", "not an HAProxy duration"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER", "0s", "greater than zero"),
    ("RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER", "30d", "maximum timer"),
    ("RAY_SERVE_HAPROXY_METRICS_PORT", "0", "port 1-65535"),
    ("RAY_SERVE_HAPROXY_STATS_PORT", "70000", "port 1-65535"),
    ("RAY_SERVE_HAPROXY_SYSLOG_PORT", "syslog", "not an integer"),
    ("RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT", "65536", "out of range"),
    ("RAY_SERVE_ENABLE_HA_PROXY", "true", "0 or 1"),
    ("RAY_SERVE_HAPROXY_BINARY_PATH", "haproxy", "not an absolute path"),
    ("RAY_SERVE_HAPROXY_SOCKET_PATH", "/tmp/my dir/admin.sock", "space"),
    ("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "/tmp/x#/haproxy.cfg", "'#'"),
    ("RAY_SERVE_HAPROXY_LOG_TARGET", "127.0.0.1:514 local0", "space"),
    ("RAY_SERVE_HAPROXY_LOG_TARGET", "127.0.0.1:99999", "not a host"),
    ("RSH_HEAD_ADDRESS", "head", "no port"),
    ("RSH_HEAD_ADDRESS", "head:port", "not a number"),
    ("RSH_HEAD_ADDRESS", "bad_host!:6379", "not an IP address or host name"),
    ("RSH_NUM_CPUS", "-1", "out of range"),
    ("RSH_OBJECT_STORE_MEMORY", "1000", "integer 78643200"),
    ("RSH_RAY_START_ARGS", "--foo 'unbalanced", "shell"),
    ("RSH_RAY_START_ARGS", "--head", "--head"),
    ("RSH_RAY_START_ARGS", "--address=other:6379", "--address"),
    ("RSH_PYTHONPATH", "relative/dir", "absolute"),
    ("RSH_SERVE_DEPLOY_TIMEOUT_S", "5m", "whole number of seconds"),
    ("RSH_GRPC_PORT", "-1", "or 0 (gRPC off)"),
    ("RSH_GRPC_PORT", "65536", "out of range"),
    ("RSH_GRPC_SERVICER_FUNCTIONS", "add_servicer", "not an import path"),
    ("RSH_GRPC_SERVICER_FUNCTIONS", "my-pkg.add_x", "not an import path"),
    ("RSH_GRPC_SERVICER_FUNCTIONS", " , ", "no import path"),
    ("RAY_kill_child_processes_on_worker_exit", "yes", "`true` or `1` as on"),
]


@pytest.mark.parametrize(
    ("variable", "raw", "expected_text"),
    [i for i in INVALID if i[2] is not None],
    ids=[f"{i[0]}={i[1]}" for i in INVALID if i[2] is not None],
)
def test_invalid_value_is_refused(load: Load, variable: str, raw: str, expected_text: str) -> None:
    errors = errors_of(load, **{variable: raw})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{variable}={raw!r}: "), errors[0]
    assert expected_text in errors[0]
    assert "allowed:" in errors[0]


def test_bare_duration_hint_explains_milliseconds(load: Load) -> None:
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER="5")
    assert "bare number as milliseconds" in error and "5s" in error


def test_all_errors_at_once_naming_each_variable(load: Load) -> None:
    errors = errors_of(
        load,
        RAY_SERVE_HAPROXY_MAXCONN="abc",
        RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER="5",
        RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT="32000",
    )
    assert len(errors) == 3, errors
    text = "\n".join(errors)
    for variable, value in (
        ("RAY_SERVE_HAPROXY_MAXCONN", "abc"),
        ("RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER", "5"),
        ("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "32000"),
    ):
        assert f"{variable}='{value}'" in text
    assert "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=31000" in text  # says what is allowed


def test_cli_exits_2_with_every_error_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("RSH_STATE_DIR", str(state))
    monkeypatch.setenv("RAY_SERVE_HAPROXY_MAXCONN", "abc")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER", "5")
    monkeypatch.setenv("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "32000")
    for command in (["head"], ["worker"], ["check"], ["config"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        for variable in (
            "RAY_SERVE_HAPROXY_MAXCONN",
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER",
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
        ):
            assert variable in err, (command, err)
    assert not state.exists()  # nothing prepared, nothing started


# --- cross-setting rules ----------------------------------------------------------------------


def test_port_ranges_must_not_overlap(load: Load) -> None:
    (error,) = errors_of(
        load,
        RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT="30500",
        RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT="35000",
    )
    assert error.startswith("RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT='30500'")
    assert "overlaps" in error


@pytest.mark.parametrize(
    "fixed",
    [
        "RSH_HTTP_PORT",
        "RSH_GRPC_PORT",
        "RAY_SERVE_HAPROXY_METRICS_PORT",
        "RAY_SERVE_HAPROXY_STATS_PORT",
        "RAY_SERVE_HAPROXY_SYSLOG_PORT",
        "RSH_RAY_PORT",
        "RSH_DASHBOARD_PORT",
    ],
)
def test_fixed_port_inside_a_replica_range_is_refused(load: Load, fixed: str) -> None:
    (error,) = errors_of(load, **{fixed: "30010"})
    assert error.startswith(f"{fixed}='30010'"), error
    assert "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT" in error


def test_range_moved_onto_a_fixed_port_blames_the_range(load: Load) -> None:
    (error,) = errors_of(
        load,
        RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT="7900",
        RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT="8100",
    )
    assert error.startswith("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT='7900'")
    assert "RSH_HTTP_PORT=8000" in error


def test_fixed_tcp_ports_must_differ(load: Load) -> None:
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_STATS_PORT="8000")
    assert error.startswith("RAY_SERVE_HAPROXY_STATS_PORT='8000'")
    assert "RSH_HTTP_PORT" in error


def test_syslog_port_may_share_a_number_with_a_tcp_port(load: Load) -> None:
    assert load(RAY_SERVE_HAPROXY_SYSLOG_PORT="8000").values.syslog_port == 8000


def test_socket_path_longer_than_haproxy_allows(load: Load) -> None:
    long_dir = "/tmp/" + "d" * 40
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_SOCKET_PATH=f"{long_dir}/admin.sock")
    assert error.startswith("RAY_SERVE_HAPROXY_SOCKET_PATH=")
    assert "97" in error


def test_metrics_socket_path_length(load: Load) -> None:
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH="/tmp/" + "m" * 50 + "/m.sock")
    assert error.startswith("RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH=") and "107" in error


def test_directory_that_cannot_be_created(load: Load, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=f"{blocker}/sub/haproxy.cfg")
    assert error.startswith("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=")
    assert "not a directory" in error


@pytest.mark.skipif(os.getuid() == 0, reason="root may write anywhere")
def test_directory_that_is_not_writable(load: Load, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    (error,) = errors_of(load, RSH_STATE_DIR=f"{locked}/state")
    assert "not writable" in error


def test_worker_needs_the_head_address(load: Load) -> None:
    (error,) = errors_of(load, Role.WORKER)
    assert error.startswith("RSH_HEAD_ADDRESS=''") and "required" in error
    assert load(role=Role.HEAD).values.head_address is None
    assert load(role=Role.WORKER, RSH_HEAD_ADDRESS="head:6379").values.head_address == "head:6379"


def test_serve_config_must_be_a_readable_file(load: Load, tmp_path: Path) -> None:
    (error,) = errors_of(load, RSH_SERVE_CONFIG=str(tmp_path / "missing.yaml"))
    assert error.startswith("RSH_SERVE_CONFIG=") and "readable file" in error


# --- translations and derived values ----------------------------------------------------------


def test_log_goes_to_stdout_without_a_receiver_by_default(load: Load) -> None:
    effective = load(RAY_SERVE_ENABLE_HA_PROXY="1", RAY_SERVE_HAPROXY_SYSLOG_PORT="5140")
    assert effective.values.log_target == "stdout"
    assert effective.sources["RAY_SERVE_HAPROXY_LOG_TARGET"] == Source.DERIVED
    env = effective.ray_env()
    assert env["RAY_SERVE_HAPROXY_LOG_TARGET"] == "stdout"
    assert "RAY_SERVE_HAPROXY_SYSLOG_PORT" not in env  # Ray 2.60 does not read it
    assert effective.syslog_receiver_port is None


@pytest.mark.parametrize("mode", ["all", "errors", "off", " Errors "])
def test_access_log_modes(load: Load, mode: str) -> None:
    assert load(RSH_ACCESS_LOG=mode).values.access_log == mode.strip().lower()


def test_unknown_access_log_mode_is_refused_naming_the_choices(load: Load) -> None:
    (error,) = errors_of(load, RSH_ACCESS_LOG="some")
    assert error.startswith("RSH_ACCESS_LOG='some'")
    assert "`all` or `errors` or `off`" in error


def test_metrics_flag_is_exported_to_ray(load: Load) -> None:
    assert load().ray_env()["RAY_SERVE_HAPROXY_METRICS_ENABLED"] == "1"
    assert (
        load(RAY_SERVE_HAPROXY_METRICS_ENABLED="0").ray_env()["RAY_SERVE_HAPROXY_METRICS_ENABLED"]
        == "0"
    )
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_METRICS_ENABLED="true")
    assert "0 or 1" in error


def test_explicit_log_target_wins_and_disables_the_receiver(load: Load) -> None:
    effective = load(RAY_SERVE_ENABLE_HA_PROXY="1", RAY_SERVE_HAPROXY_LOG_TARGET="/dev/log")
    assert effective.ray_env()["RAY_SERVE_HAPROXY_LOG_TARGET"] == "/dev/log"
    assert effective.syslog_receiver_port is None


def test_explicit_local_log_target_matching_syslog_port(load: Load) -> None:
    effective = load(
        RAY_SERVE_ENABLE_HA_PROXY="1",
        RAY_SERVE_HAPROXY_SYSLOG_PORT="5140",
        RAY_SERVE_HAPROXY_LOG_TARGET="127.0.0.1:5140",
    )
    assert effective.syslog_receiver_port == 5140


def test_local_log_target_that_misses_the_receiver_is_refused(load: Load) -> None:
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_LOG_TARGET="127.0.0.1:5140")
    assert error.startswith("RAY_SERVE_HAPROXY_LOG_TARGET='127.0.0.1:5140'")
    assert "RAY_SERVE_HAPROXY_SYSLOG_PORT=514" in error


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (2, 2), (3, 3), (4, 4), (16, 4)])
def test_nbthread_derived_from_cpus_at_most_4(
    private_paths: dict[str, str], cpus: int, expected: int
) -> None:
    facts = HostFacts(cpus=cpus, shm_bytes=None, haproxy_binary=None)
    effective = load_settings(private_paths, facts=facts)
    assert effective.values.nbthread == expected
    assert effective.ray_env()["RAY_SERVE_HAPROXY_NBTHREAD"] == str(expected)


def test_explicit_nbthread_is_not_capped(private_paths: dict[str, str]) -> None:
    facts = HostFacts(cpus=2, shm_bytes=None, haproxy_binary=None)
    effective = load_settings({**private_paths, "RAY_SERVE_HAPROXY_NBTHREAD": "8"}, facts=facts)
    assert effective.values.nbthread == 8


@pytest.mark.parametrize(
    ("shm", "expected"),
    [(None, 78643200), (64 * 1024**2, 78643200), (512 * 1024**2, int(0.3 * 512 * 1024**2))],
)
def test_object_store_memory_derived_from_shm(
    private_paths: dict[str, str], shm: int | None, expected: int
) -> None:
    facts = HostFacts(cpus=2, shm_bytes=shm, haproxy_binary=None)
    assert load_settings(private_paths, facts=facts).values.object_store_memory == expected


def test_binary_path_unresolved_is_not_exported(private_paths: dict[str, str]) -> None:
    facts = HostFacts(cpus=2, shm_bytes=None, haproxy_binary=None)
    effective = load_settings(private_paths, facts=facts)  # Python-proxy mode needs none
    assert effective.values.haproxy_binary_path == ""
    assert "RAY_SERVE_HAPROXY_BINARY_PATH" not in effective.ray_env()


def test_haproxy_mode_without_any_binary_is_refused(private_paths: dict[str, str]) -> None:
    facts = HostFacts(cpus=2, shm_bytes=None, haproxy_binary=None)
    with pytest.raises(InvalidSettings) as caught:
        load_settings({**private_paths, "RAY_SERVE_ENABLE_HA_PROXY": "1"}, facts=facts)
    (error,) = caught.value.errors
    assert str(error).startswith("RAY_SERVE_HAPROXY_BINARY_PATH=''")


def test_explicit_binary_must_be_executable(load: Load, tmp_path: Path) -> None:
    plain = tmp_path / "haproxy"
    plain.write_text("not executable")
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_BINARY_PATH=str(plain))
    assert "no executable file" in error
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_BINARY_PATH="/nonexistent/haproxy")
    assert "no executable file" in error


def test_ray_env_carries_every_ray_facing_effective_value(load: Load) -> None:
    env = load(RAY_SERVE_ENABLE_HA_PROXY="1", RSH_HTTP_PORT="8080").ray_env()
    assert env == {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_MAXCONN": "20000",
        "RAY_SERVE_HAPROXY_NBTHREAD": "2",
        "RAY_SERVE_HAPROXY_BINARY_PATH": "/usr/local/bin/haproxy",
        "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": "16384",
        "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": "3600",
        "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S": "5",
        "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "3690",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL": "2",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE": "2",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER": "5s",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER": "250ms",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER": "250ms",
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": env["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"],
        "RAY_SERVE_HAPROXY_SOCKET_PATH": env["RAY_SERVE_HAPROXY_SOCKET_PATH"],
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": env["RAY_SERVE_HAPROXY_SERVER_STATE_BASE"],
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": env["RAY_SERVE_HAPROXY_SERVER_STATE_FILE"],
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": env["RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH"],
        "RAY_SERVE_HAPROXY_METRICS_PORT": "9101",
        "RAY_SERVE_HAPROXY_STATS_PORT": "8404",
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "1",
        "RAY_SERVE_HAPROXY_LOG_TARGET": "stdout",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "30000",
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": "31000",
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": "40000",
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": "41000",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": env["RAY_AUTH_TOKEN_PATH"],
        "RAY_gcs_storage": "memory",
        "RAY_gcs_rpc_server_reconnect_timeout_s": "60",
        "RAY_kill_child_processes_on_worker_exit": "false",
    }
    assert not any(name.startswith("RSH_") for name in env)


def test_ray_env_values_parse_the_way_ray_260_reads_them(load: Load) -> None:
    # Ray does int(os.environ[...]) for these; a unit suffix would crash its constants module.
    env = load(RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="600").ray_env()
    for name in (
        "RAY_SERVE_HAPROXY_MAXCONN",
        "RAY_SERVE_HAPROXY_NBTHREAD",
        "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S",
        "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S",
        "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S",
        "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL",
        "RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE",
        "RAY_SERVE_HAPROXY_METRICS_PORT",
        "RAY_SERVE_HAPROXY_STATS_PORT",
    ):
        int(env[name])
    assert env["RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"] == "600"


def test_config_json_lists_value_and_source(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    token_file: Path,
) -> None:
    import json

    monkeypatch.setenv("RSH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    monkeypatch.setenv("RAY_SERVE_HAPROXY_MAXCONN", "1234")
    monkeypatch.delenv("RAY_SERVE_HAPROXY_NBTHREAD", raising=False)
    assert main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    settings = data["settings"]
    assert settings["RAY_SERVE_HAPROXY_MAXCONN"] == {"value": "1234", "source": "environment"}
    assert settings["RAY_SERVE_HAPROXY_NBTHREAD"]["source"] == "derived"
    assert settings["RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S"] == {"value": "5", "source": "default"}
    assert data["ray_env"]["RAY_SERVE_HAPROXY_MAXCONN"] == "1234"
    assert set(settings) == {spec.env for _, spec in specs()}


def test_settings_fields_all_have_specs() -> None:
    import dataclasses

    assert len(specs()) == len(dataclasses.fields(Settings))


def test_default_maxconn_fits_a_low_open_files_limit(private_paths: dict[str, str]) -> None:
    facts = HostFacts(cpus=2, shm_bytes=None, haproxy_binary=None, nofile_hard=20000)
    effective = load_settings(private_paths, facts=facts)
    # HAProxy asked for 50030 fds at maxconn 20000 and for 20005 at 7990 (measured).
    assert 7000 < effective.values.maxconn < 7990
    assert effective.sources["RAY_SERVE_HAPROXY_MAXCONN"] == Source.DERIVED
    assert effective.ray_env()["RAY_SERVE_HAPROXY_MAXCONN"] == str(effective.values.maxconn)


def test_explicit_maxconn_beyond_the_open_files_limit_is_refused(
    private_paths: dict[str, str],
) -> None:
    facts = HostFacts(cpus=2, shm_bytes=None, haproxy_binary=None, nofile_hard=20000)
    with pytest.raises(InvalidSettings) as caught:
        load_settings({**private_paths, "RAY_SERVE_HAPROXY_MAXCONN": "20000"}, facts=facts)
    (error,) = caught.value.errors
    assert str(error).startswith("RAY_SERVE_HAPROXY_MAXCONN='20000'")
    assert "ulimit" in str(error)
    ok = {**private_paths, "RAY_SERVE_HAPROXY_MAXCONN": "4096"}
    assert load_settings(ok, facts=facts).values.maxconn == 4096


def test_unlimited_open_files_keep_the_guide_default(private_paths: dict[str, str]) -> None:
    facts = HostFacts(cpus=2, shm_bytes=None, haproxy_binary=None, nofile_hard=None)
    effective = load_settings(private_paths, facts=facts)
    assert effective.values.maxconn == 20000
    assert effective.sources["RAY_SERVE_HAPROXY_MAXCONN"] == Source.DEFAULT


# --- node address and Ray's ports (host networking) ---------------------------------------

HOST_ADDRESSES = {"127.0.0.1": "lo", "10.0.0.7": "eth0", "192.168.5.2": "eth1", "fd00::7": "eth0"}


@pytest.fixture
def load_on_host(private_paths: dict[str, str]) -> Load:
    """load(...) on a host with two interfaces besides loopback."""
    facts = HostFacts(
        cpus=2, shm_bytes=2**30, haproxy_binary="/bin/true", local_addresses=HOST_ADDRESSES
    )

    def _load(role: Role | None = None, **env: str) -> EffectiveSettings:
        return load_settings({**private_paths, **env}, role=role, facts=facts)

    return _load


@pytest.mark.parametrize("address", ["10.0.0.7", "192.168.5.2", "fd00::7", "[fd00::7]"])
def test_node_ip_of_this_host_is_accepted(load_on_host: Load, address: str) -> None:
    effective = load_on_host(RSH_NODE_IP=address)
    assert effective.values.node_ip == address.strip("[]")
    assert effective.sources["RSH_NODE_IP"] == Source.ENVIRONMENT


def test_node_ip_of_another_host_names_this_hosts_addresses(load_on_host: Load) -> None:
    (error,) = errors_of(load_on_host, RSH_NODE_IP="10.0.0.99")
    assert error.startswith("RSH_NODE_IP='10.0.0.99': not an address of this host")
    # The operator sees which addresses would do, with their interfaces.
    assert "10.0.0.7 (eth0), 192.168.5.2 (eth1)" in error


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("head", "not an IP address"),
        ("10.0.0.256", "not an IP address"),
        ("0.0.0.0", "not the address of one interface"),
        ("::", "not the address of one interface"),
        ("224.0.0.1", "not the address of one interface"),
    ],
)
def test_node_ip_must_be_one_address(load_on_host: Load, raw: str, problem: str) -> None:
    (error,) = errors_of(load_on_host, RSH_NODE_IP=raw)
    assert f"RSH_NODE_IP={raw!r}: {problem}; allowed: an IP address of this host" in error


def test_node_ip_is_not_checked_when_the_hosts_addresses_are_unknown(load: Load) -> None:
    # The KubeRay manifest tests describe another machine (a pod): no addresses known.
    assert load(RSH_NODE_IP="10.9.9.9").values.node_ip == "10.9.9.9"


def test_worker_port_range_needs_low_below_high(load: Load) -> None:
    (error,) = errors_of(load, RSH_MIN_WORKER_PORT="12000", RSH_MAX_WORKER_PORT="12000")
    assert error.startswith("RSH_MIN_WORKER_PORT='12000': not below RSH_MAX_WORKER_PORT=12000")
    (error,) = errors_of(load, RSH_MIN_WORKER_PORT="1000")
    assert "out of range; allowed: integer 1024-65535" in error


def test_worker_port_range_must_not_overlap_the_replica_ranges(load: Load) -> None:
    (error,) = errors_of(load, RSH_MAX_WORKER_PORT="30500")
    assert error.startswith("RSH_MAX_WORKER_PORT='30500': worker port range 10002-30500")
    assert "overlaps the replica HTTP range 30000-31000" in error


@pytest.mark.parametrize(
    "variable",
    [
        "RSH_NODE_MANAGER_PORT",
        "RSH_OBJECT_MANAGER_PORT",
        "RSH_METRICS_EXPORT_PORT",
        "RSH_HTTP_PORT",
    ],
)
def test_fixed_port_inside_the_worker_range_is_refused(load: Load, variable: str) -> None:
    (error,) = errors_of(load, **{variable: "12345"})
    assert error.startswith(f"{variable}='12345': {variable}=12345 lies in Ray's worker port range")


def test_ray_ports_must_differ_from_every_other_port(load: Load) -> None:
    (error,) = errors_of(load, RSH_NODE_MANAGER_PORT="6380", RSH_OBJECT_MANAGER_PORT="6380")
    assert "same port as RSH_NODE_MANAGER_PORT" in error
    (error,) = errors_of(load, RSH_METRICS_EXPORT_PORT="9101")
    assert error.startswith("RSH_METRICS_EXPORT_PORT='9101': same port as RAY_SERVE_HAPROXY_")
    (error,) = errors_of(load, RSH_RUNTIME_ENV_AGENT_PORT="30010")
    assert "lies in the replica HTTP port range" in error


def test_a_fixed_firewall_friendly_node_is_valid(load_on_host: Load) -> None:
    """The set of settings the multi-machine docs will use: every Ray port fixed."""
    effective = load_on_host(
        role=Role.WORKER,
        RSH_HEAD_ADDRESS="10.0.0.2:6379",
        RSH_NODE_IP="10.0.0.7",
        RSH_NODE_MANAGER_PORT="6380",
        RSH_OBJECT_MANAGER_PORT="6381",
        RSH_METRICS_EXPORT_PORT="8080",
        RSH_DASHBOARD_AGENT_GRPC_PORT="8266",
        RSH_RUNTIME_ENV_AGENT_PORT="8267",
        RSH_MIN_WORKER_PORT="20000",
        RSH_MAX_WORKER_PORT="20999",
    )
    assert effective.values.node_manager_port == 6380


@pytest.mark.parametrize(
    ("argument", "owner"),
    [
        ("--node-ip-address=10.0.0.7", "RSH_NODE_IP"),
        ("--min-worker-port=11000", "RSH_MIN_WORKER_PORT"),
        ("--object-manager-port 6381", "RSH_OBJECT_MANAGER_PORT"),
    ],
)
def test_ray_start_args_must_not_bypass_a_validated_setting(
    load: Load, argument: str, owner: str
) -> None:
    (error,) = errors_of(load, RSH_RAY_START_ARGS=argument)
    option = argument.split("=")[0].split()[0]
    assert error.startswith(f"RSH_RAY_START_ARGS={argument!r}: sets {option}, which {owner} owns")


# --- hard-stop-after: derived from the timeouts, decoupled from the node's shutdown ------------


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, 3690),  # no server timeout: the client timeout + 90
        ({"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "300"}, 390),
        (
            {
                "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "300",
                "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": "9",
            },
            390,
        ),
        ({"RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": "60"}, 150),
        ({"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "86400"}, 86490),
        ({"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "2147483"}, 2147483),  # HAProxy's timer limit
    ],
)
def test_hard_stop_after_is_derived_from_the_timeouts(
    load: Load, env: dict[str, str], expected: int
) -> None:
    effective = load(**env)
    assert effective.values.hard_stop_after_s == expected
    assert effective.sources["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"] == Source.DERIVED
    how = effective.derivations["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"]
    assert "keep-alive 90" in how and how.endswith(f"= {expected}s")
    assert effective.ray_env()["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"] == str(expected)


def test_hard_stop_after_shorter_than_the_server_timeout_is_refused(load: Load) -> None:
    (error,) = errors_of(
        load,
        RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="300",
        RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S="60",
    )
    assert error.startswith("RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S='60'")
    assert "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S=300" in error
    assert "at least 300" in error and "390" in error
    ok = load(RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="300", RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S="300")
    assert ok.values.hard_stop_after_s == 300
    assert "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S" not in ok.derivations


def test_a_broken_timeout_reports_itself_not_the_derived_hard_stop(load: Load) -> None:
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="5m")
    assert error.startswith("RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S=")


def test_hard_stop_after_does_not_bound_the_shutdown(load: Load) -> None:
    # The point of issue 15: a day-long reload limit, a container that still stops in 25 s.
    effective = load(RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S="86400")
    assert effective.values.shutdown_timeout_s == 25
    assert "RSH_SHUTDOWN_TIMEOUT_S" not in effective.ray_env()


def test_config_shows_how_hard_stop_after_was_derived(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    token_file: Path,
) -> None:
    import json

    monkeypatch.setenv("RSH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    monkeypatch.setenv("RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S", "120")
    monkeypatch.delenv("RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S", raising=False)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert (
        "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S (derived): RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S 120"
        " + Serve's keep-alive 90 = 210s"
    ) in out
    assert main(["config", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["settings"]["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"]
    assert entry["value"] == "210" and entry["source"] == "derived"
    assert entry["derivation"].endswith("= 210s")


def test_tune_bufsize_reaches_ray_and_is_bounded(load: Load) -> None:
    assert (
        load(RAY_SERVE_HAPROXY_TUNE_BUFSIZE="65536").ray_env()["RAY_SERVE_HAPROXY_TUNE_BUFSIZE"]
        == "65536"
    )
    assert load().ray_env()["RAY_SERVE_HAPROXY_TUNE_BUFSIZE"] == "16384"
    (error,) = errors_of(load, RAY_SERVE_HAPROXY_TUNE_BUFSIZE="8192")
    assert error.startswith("RAY_SERVE_HAPROXY_TUNE_BUFSIZE='8192'")
    assert "integer 16384-1048576 bytes" in error
