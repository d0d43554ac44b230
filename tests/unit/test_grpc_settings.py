"""gRPC through HAProxy: RSH_GRPC_PORT / RSH_GRPC_SERVICER_FUNCTIONS validation, and how
serve-up merges them with a Serve config's grpc_options before `serve.start`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.serve_up import (
    ServeUpError,
    check_importable,
    load_config,
    merge_grpc_options,
)
from ray_serve_haproxy.settings_loader import EffectiveSettings, InvalidSettings

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]


def errors_of(load: Load, **env: str) -> list[str]:
    with pytest.raises(InvalidSettings) as caught:
        load(**env)
    return [str(e) for e in caught.value.errors]


# --- validation -------------------------------------------------------------------------------


def test_defaults_port_9000_and_no_servicer_functions(load: Load) -> None:
    values = load().values
    assert values.grpc_port == 9000
    assert values.grpc_servicer_functions == ()
    # Serve-side settings: nothing for `ray start`'s environment.
    assert not {"RSH_GRPC_PORT", "RSH_GRPC_SERVICER_FUNCTIONS"} & set(load().ray_env())


@pytest.mark.parametrize(
    ("other", "value"),
    [
        ("RSH_HTTP_PORT", "8000"),
        ("RAY_SERVE_HAPROXY_METRICS_PORT", "9101"),
        ("RAY_SERVE_HAPROXY_STATS_PORT", "8404"),
        ("RSH_RAY_PORT", "6379"),
        ("RSH_DASHBOARD_PORT", "8265"),
    ],
)
def test_grpc_port_on_another_tcp_port_is_refused(load: Load, other: str, value: str) -> None:
    (error,) = errors_of(load, RSH_GRPC_PORT=value)
    assert error.startswith(f"RSH_GRPC_PORT='{value}': same port as {other}"), error
    assert "allowed:" in error


def test_a_setting_moved_onto_the_default_grpc_port_is_blamed(load: Load) -> None:
    # The user set RSH_HTTP_PORT; the gRPC port kept its default: name the user's variable.
    (error,) = errors_of(load, RSH_HTTP_PORT="9000")
    assert error.startswith("RSH_HTTP_PORT='9000': same port as RSH_GRPC_PORT"), error


def test_syslog_udp_port_may_equal_the_grpc_port(load: Load) -> None:
    assert load(RAY_SERVE_HAPROXY_SYSLOG_PORT="9000").values.grpc_port == 9000


@pytest.mark.parametrize("port", ["30000", "30999", "40000", "40500", "41000"])
def test_grpc_port_inside_a_direct_ingress_range_is_refused(load: Load, port: str) -> None:
    (error,) = errors_of(load, RSH_GRPC_PORT=port)
    assert error.startswith(f"RSH_GRPC_PORT='{port}'"), error
    assert "direct-ingress ranges" in error
    label = "HTTP" if port.startswith("3") else "GRPC"
    assert f"RAY_SERVE_DIRECT_INGRESS_MIN_{label}_PORT" in error


def test_grpc_range_moved_onto_the_grpc_port_blames_the_range(load: Load) -> None:
    (error,) = errors_of(
        load,
        RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT="8900",
        RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT="9100",
    )
    assert error.startswith("RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT='8900'"), error
    assert "RSH_GRPC_PORT=9000" in error


@pytest.mark.parametrize(
    ("port", "variable"),
    [
        ("9500", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT"),
        ("8500", "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"),
    ],
)
def test_grpc_port_on_serves_fallback_proxy_port_is_refused(
    load: Load, port: str, variable: str
) -> None:
    (error,) = errors_of(load, RSH_GRPC_PORT=port)
    assert error.startswith(f"RSH_GRPC_PORT='{port}'"), error
    assert f"{variable}={port}" in error


def test_fallback_proxy_port_follows_rays_variable(load: Load) -> None:
    (error,) = errors_of(load, RSH_GRPC_PORT="9001", RAY_SERVE_FALLBACK_PROXY_GRPC_PORT="9001")
    assert "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT=9001" in error
    assert load(RSH_GRPC_PORT="9500", RAY_SERVE_FALLBACK_PROXY_GRPC_PORT="9501")


def test_port_0_turns_grpc_off_and_collides_with_nothing(load: Load) -> None:
    effective = load(RSH_GRPC_PORT="0", RAY_SERVE_HAPROXY_STATS_PORT="9000")
    assert effective.values.grpc_port == 0


def test_every_grpc_error_at_once(load: Load) -> None:
    errors = errors_of(
        load, RSH_GRPC_PORT="9101", RSH_GRPC_SERVICER_FUNCTIONS="not a path", RSH_HTTP_PORT="x"
    )
    text = "\n".join(errors)
    assert "RSH_GRPC_PORT='9101'" in text
    assert "RSH_GRPC_SERVICER_FUNCTIONS='not a path'" in text
    assert "RSH_HTTP_PORT='x'" in text


# --- merging with the Serve config ------------------------------------------------------------

DEMO_FUNCTION = "demo_pb2_grpc.add_DemoServicer_to_server"


def test_no_servicer_functions_anywhere_leaves_grpc_off() -> None:
    assert merge_grpc_options(None, 9000, ()) is None
    assert merge_grpc_options({"port": 9001}, 9000, ()) is None


def test_environment_functions_alone_turn_grpc_on() -> None:
    assert merge_grpc_options(None, 9000, ("a.add_x",)) == {
        "port": 9000,
        "grpc_servicer_functions": ["a.add_x"],
    }


def test_config_and_environment_functions_are_merged_without_duplicates() -> None:
    merged = merge_grpc_options(
        {"grpc_servicer_functions": [DEMO_FUNCTION, "b.add_y"], "request_timeout_s": 30},
        9000,
        ("c.add_z", DEMO_FUNCTION),
    )
    assert merged == {
        "port": 9000,
        "grpc_servicer_functions": [DEMO_FUNCTION, "b.add_y", "c.add_z"],
        "request_timeout_s": 30,  # the config's other keys are kept
    }


def test_runtime_port_wins_over_the_configs(capsys: pytest.CaptureFixture[str]) -> None:
    merged = merge_grpc_options({"port": 50051, "grpc_servicer_functions": ["a.f"]}, 9000, ())
    assert merged is not None and merged["port"] == 9000
    assert "overriding grpc_options port 50051 with 9000" in capsys.readouterr().out


def test_port_0_turns_grpc_off_despite_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert merge_grpc_options({"grpc_servicer_functions": ["a.f"]}, 0, ("b.g",)) is None
    assert "gRPC is off" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad", ["9000", ["a.f"], {"grpc_servicer_functions": "a.f"}, {"grpc_servicer_functions": [1]}]
)
def test_malformed_grpc_options_are_refused(bad: object) -> None:
    with pytest.raises(ServeUpError, match="grpc_options"):
        merge_grpc_options(bad, 9000, ())


def test_load_config_forces_http_and_merges_grpc(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        "http_options: {port: 1234}\n"
        "grpc_options:\n"
        "  port: 9999\n"
        f"  grpc_servicer_functions: [{DEMO_FUNCTION}]\n"
        "applications: [{name: a, import_path: m:app}]\n"
    )
    config = load_config(str(path), "0.0.0.0", 8000, 9000, ("x.add_y",))
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}
    assert config["grpc_options"] == {
        "port": 9000,
        "grpc_servicer_functions": [DEMO_FUNCTION, "x.add_y"],
    }


def test_load_config_drops_grpc_options_when_grpc_is_off(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        f"grpc_options: {{grpc_servicer_functions: [{DEMO_FUNCTION}]}}\n"
        "applications: [{name: a, import_path: m:app}]\n"
    )
    assert "grpc_options" not in load_config(str(path), "0.0.0.0", 8000, 0, ())
    # Default arguments (an older caller): gRPC off, as before.
    assert "grpc_options" not in load_config(str(path), "0.0.0.0", 8000)


def test_check_importable_names_the_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "svc_mod.py").write_text("def add_S_to_server(servicer, server):\n    pass\n")
    (tmp_path / "svc_const.py").write_text("add_S_to_server = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check_importable(["svc_mod.add_S_to_server", "svc_mod:add_S_to_server"])
    with pytest.raises(ServeUpError, match=r"svc_mod\.missing cannot be imported"):
        check_importable(["svc_mod.missing"])
    with pytest.raises(ServeUpError, match=r"no_such_module\.add_x cannot be imported"):
        check_importable(["no_such_module.add_x"])
    with pytest.raises(ServeUpError, match="not callable"):
        check_importable(["svc_const.add_S_to_server"])
    for name in ("svc_mod", "svc_const"):
        sys.modules.pop(name, None)
