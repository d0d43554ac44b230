"""compose.yaml's stop and reload settings agree with the runtime: a node's shutdown fits
`stop_grace_period` whatever hard-stop-after is, and hard-stop-after covers the timeouts."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_serve_haproxy.ray_process import STOP_MARGIN_S
from ray_serve_haproxy.settings import SERVE_KEEP_ALIVE_S
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role, Source

pytestmark = pytest.mark.unit

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
Load = Callable[..., EffectiveSettings]


def seconds(duration: str) -> int:
    """Compose's duration ("30s", "1m30s") in seconds."""
    parts = re.findall(r"(\d+)(h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


@pytest.mark.parametrize("name", ["head", "worker"])
def test_shutdown_fits_the_stop_grace_period(load: Load, name: str) -> None:
    service = services()[name]
    env = {k: str(v) for k, v in service["environment"].items()}
    role = Role.WORKER if name == "worker" else Role.HEAD
    env.pop("RSH_SERVE_CONFIG", None)  # a path inside the image
    values = load(role=role, **env).values
    grace = seconds(service["stop_grace_period"])
    assert values.shutdown_timeout_s + STOP_MARGIN_S <= grace, (
        f"{name}: RSH_SHUTDOWN_TIMEOUT_S {values.shutdown_timeout_s} + {STOP_MARGIN_S} s "
        f"> stop_grace_period {grace} s"
    )


@pytest.mark.parametrize("name", ["head", "worker"])
def test_hard_stop_after_is_derived_and_outlasts_the_grace_period(load: Load, name: str) -> None:
    env = {k: str(v) for k, v in services()[name]["environment"].items()}
    env.pop("RSH_SERVE_CONFIG", None)
    role = Role.WORKER if name == "worker" else Role.HEAD
    effective = load(role=role, **env)
    assert effective.sources["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"] == Source.DERIVED
    server = effective.values.timeout_server_s
    assert server is not None
    assert effective.values.hard_stop_after_s == server + SERVE_KEEP_ALIVE_S
    # Decoupled: the reload limit is far longer than the container's stop.
    grace = seconds(services()[name]["stop_grace_period"])
    assert effective.values.hard_stop_after_s > grace
