"""docker-bake.hcl: the default image, the HAProxy 3.0 variant and the multi-arch release."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def bake_print_all(*targets: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`docker buildx bake --print` exactly as a user types it in the repository root: no -f,
    so bake reads its default files, compose.yaml included."""
    result = subprocess.run(
        ["docker", "buildx", "bake", "--print", *targets],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **(env or {})},
    )
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def bake_print(*targets: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    targets_json: dict[str, Any] = bake_print_all(*targets, env=env)["target"]
    return targets_json


@pytest.mark.image
def test_plain_bake_resolves_the_default_image() -> None:
    # compose.yaml is read too (its services have no build section) and must not empty the
    # default group: that is what `docker buildx bake` with no argument builds.
    printed = bake_print_all()
    assert printed["group"]["default"]["targets"] == ["default"], printed
    assert set(printed["target"]) == {"default"}, printed
    default = printed["target"]["default"]
    assert default["target"] == "runtime" and default["dockerfile"] == "Dockerfile"
    assert "ray-serve-haproxy:latest" in default["tags"]


@pytest.mark.image
def test_compose_still_reads_compose_yaml() -> None:
    result = subprocess.run(
        ["docker", "compose", "config", "--services"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )
    assert sorted(result.stdout.split()) == ["head", "worker"], result.stdout


@pytest.mark.image
def test_print_lists_default_haproxy30_and_release() -> None:
    # Each named target by itself, then all three together, as `docker buildx bake NAME` builds.
    for name in ("default", "haproxy30", "release"):
        assert set(bake_print(name)) == {name}
    targets = bake_print("default", "haproxy30", "release")
    assert set(targets) == {"default", "haproxy30", "release"}
    assert targets["default"]["args"]["HAPROXY_VERSION"].startswith("2.8.")
    assert targets["default"]["args"]["RAY_VERSION"] == "2.60.0"
    assert targets["default"]["args"]["BASE_IMAGE"] == "debian:bookworm-slim"
    assert targets["haproxy30"]["args"]["HAPROXY_VERSION"].startswith("3.0.")
    assert sorted(targets["release"]["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert "contexts" not in targets["default"], "online default must not need a local tarball"


@pytest.mark.image
def test_variables_reach_the_build() -> None:
    env = {
        "RAY_VERSION": "2.61.0",
        "HAPROXY_VERSION": "2.8.14",
        "BASE_IMAGE": "example.org/debian:12",
        "TAG": "t1",
        "HAPROXY_SRC_DIR": "/srv/haproxy",
    }
    target = bake_print("default", env=env)["default"]
    assert target["args"]["RAY_VERSION"] == "2.61.0"
    assert target["args"]["HAPROXY_VERSION"] == "2.8.14"
    assert target["args"]["BASE_IMAGE"] == "example.org/debian:12"
    assert "ray-serve-haproxy:t1" in target["tags"]
    assert target["contexts"]["haproxy-src"] == "/srv/haproxy"
