"""`check` names the deployments whose replicas Serve kills, after a stop, sooner than the
longest request the settings allow (RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.env_checks import Level, check_graceful_shutdown
from ray_serve_haproxy.graceful_shutdown import short_shutdowns
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "examples" / "demo" / "serve_config.yaml"

CONFIG = {
    "applications": [
        {
            "name": "shop",
            "deployments": [
                {"name": "Front", "graceful_shutdown_timeout_s": 300},
                {"name": "Model"},  # Serve's default, 20 s
            ],
        },
        {"name": "batch", "deployments": [{"name": "Job", "graceful_shutdown_timeout_s": 60}]},
        {"name": "code-only"},  # no deployments listed: their code decides, nothing to judge
    ]
}


def test_shorter_than_the_server_timeout_is_named() -> None:
    found = short_shutdowns(CONFIG, timeout_server_s=120)
    assert [(s.label, s.graceful_shutdown_timeout_s, s.assumed) for s in found] == [
        ("shop/Model", 20.0, True),
        ("batch/Job", 60.0, False),
    ]
    assert "application 'shop', deployment Model" in str(found[0])
    assert "Serve's default 20 s" in str(found[0])
    assert "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S=120" in str(found[0])
    assert "graceful_shutdown_timeout_s 60" in str(found[1])
    # Equal is enough: the replica outlives the longest request.
    assert short_shutdowns(CONFIG, timeout_server_s=20) == []
    assert [s.label for s in short_shutdowns(CONFIG, timeout_server_s=21)] == ["shop/Model"]


def test_no_server_timeout_means_every_deployment() -> None:
    assert [s.label for s in short_shutdowns(CONFIG, timeout_server_s=None)] == [
        "shop/Front",
        "shop/Model",
        "batch/Job",
    ]


def test_values_that_are_not_numbers_are_left_to_serve() -> None:
    config = {
        "applications": [
            {"name": "a", "deployments": [{"name": "D", "graceful_shutdown_timeout_s": "x"}]}
        ]
    }
    assert short_shutdowns(config, timeout_server_s=10) == []


def test_check_warns_per_deployment_with_a_server_timeout(load: Load, tmp_path: Path) -> None:
    config = tmp_path / "serve_config.yaml"
    config.write_text(
        "applications:\n"
        "  - name: shop\n"
        "    import_path: shop:app\n"
        "    deployments:\n"
        "      - {name: Front, graceful_shutdown_timeout_s: 300}\n"
        "      - {name: Model}\n"
    )
    env = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RSH_SERVE_CONFIG": str(config)}
    findings = check_graceful_shutdown(
        load(RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="300", **env), Role.HEAD
    )
    assert [(f.level, f.subject) for f in findings] == [
        (Level.WARN, "graceful shutdown of shop/Model")
    ]
    assert "a request run 300 s" in findings[0].detail
    # Unset: one line naming every deployment.
    findings = check_graceful_shutdown(load(**env), Role.HEAD)
    assert [f.level for f in findings] == [Level.WARN]
    assert "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S is unset" in findings[0].detail
    assert "deployment Front: graceful_shutdown_timeout_s 300" in findings[0].detail
    assert "deployment Model: graceful_shutdown_timeout_s not set" in findings[0].detail
    # Long enough everywhere: OK; workers and the Python proxy mode are not judged.
    findings = check_graceful_shutdown(
        load(RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S="20", **env), Role.HEAD
    )
    assert [f.level for f in findings] == [Level.OK]
    assert check_graceful_shutdown(load(**env), Role.WORKER) == []
    off = {**env, "RAY_SERVE_ENABLE_HA_PROXY": "0"}
    assert check_graceful_shutdown(load(**off), Role.HEAD) == []


def test_demo_config_against_compose_settings(load: Load) -> None:
    """compose runs the demo with a 300 s server timeout: the demo's short-request apps keep
    Serve's default and are named; `slow` (120 s) too, since 300 s requests are allowed."""
    env = {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RSH_SERVE_CONFIG": str(DEMO_CONFIG),
        "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "300",
    }
    findings = check_graceful_shutdown(load(**env), Role.HEAD)
    assert [f.subject for f in findings] == [
        "graceful shutdown of hello/Hello",
        "graceful shutdown of echo/Echo",
        "graceful shutdown of greeter/Greeter",
        "graceful shutdown of slow/Slow",
    ]
    assert all(f.level == Level.WARN for f in findings)


def test_an_unreadable_config_is_a_warning(load: Load, tmp_path: Path) -> None:
    config = tmp_path / "serve_config.yaml"
    config.write_text("- not a mapping\n")
    env = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RSH_SERVE_CONFIG": str(config)}
    findings = check_graceful_shutdown(load(**env), Role.HEAD)
    assert [f.level for f in findings] == [Level.WARN]
    assert "not checked: " in findings[0].detail and "not a Serve config" in findings[0].detail
