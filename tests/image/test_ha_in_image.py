"""High-availability pieces in the image: the entry's rendered config is one the image's own
HAProxy accepts, the entry and the GCS storage settings are refused clearly when they cannot
work, and the directory meant for the GCS volume is the ray user's."""

from __future__ import annotations

import pytest

from .conftest import ImageRunner

pytestmark = pytest.mark.image

STATE = "/tmp/ray-serve-haproxy"


def test_entry_config_is_accepted_by_the_images_haproxy(image_runner: ImageRunner) -> None:
    # Names (resolved by HAProxy while it runs), an IP address with its own port, gRPC on.
    script = (
        "RSH_ENTRY_NODES=head,worker,10.0.0.7:8001 ray-serve-haproxy entry --render-only "
        f"&& haproxy -c -f {STATE}/entry-haproxy.cfg"
    )
    # No token file: the entry talks to no Ray.
    result = image_runner.sh(script, timeout_s=60, token=False)
    print(result.output)
    # Valid (exit 0): warnings only, the intended "no server timeout" among them.
    assert result.exit_code == 0, result.output
    assert "[ALERT]" not in result.output
    assert "missing timeouts for backend 'nodes_http'" in result.output


def test_entry_needs_no_token(image_runner: ImageRunner) -> None:
    """The entry forwards to HAProxy's client ports only: no token file, and `check` says so
    instead of failing on the missing file as it does for a Ray node."""
    nodes = {"RSH_ENTRY_NODES": "head,worker"}
    result = image_runner.run(
        ["check", "--role", "entry"], environment=nodes, timeout_s=60, token=False
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "entry: runs no Ray and needs no token" in result.output
    assert "FAIL" not in result.output.replace("0 failure(s)", "")
    node = image_runner.run(["check", "--role", "head"], timeout_s=60, token=False)
    assert node.exit_code == 2 and "RAY_AUTH_TOKEN_PATH" in node.output, node.output


def test_entry_refuses_without_nodes(image_runner: ImageRunner) -> None:
    result = image_runner.run(["entry"], timeout_s=60, token=False)
    assert result.exit_code == 2, result.output
    assert "RSH_ENTRY_NODES" in result.output and "required for `entry`" in result.output
    assert "supervisord started" not in result.output


def test_gcs_storage_combinations_that_cannot_work(image_runner: ImageRunner) -> None:
    result = image_runner.run(
        ["check", "--no-ports"],
        environment={
            "RAY_gcs_storage": "rocksdb",
            "RAY_REDIS_ADDRESS": "redis:6379",
            "RSH_REDIS_PASSWORD": "hunter2-secret",
        },
        timeout_s=60,
    )
    assert result.exit_code == 2, result.output
    for variable in ("RAY_gcs_storage_path", "RAY_REDIS_ADDRESS", "RAY_external_storage_namespace"):
        assert variable in result.output, result.output
    assert "hunter2-secret" not in result.output


def test_gcs_volume_directory_belongs_to_the_ray_user(image_runner: ImageRunner) -> None:
    # What compose mounts the `gcs` volume on: an empty named volume takes this owner.
    result = image_runner.sh("stat -c '%u %a' /var/lib/ray", timeout_s=60)
    assert result.exit_code == 0 and result.output.split() == ["1000", "700"], result.output
    result = image_runner.run(
        ["check", "--no-ports", "--role", "head"],
        environment={"RAY_gcs_storage": "rocksdb", "RAY_gcs_storage_path": "/var/lib/ray/gcs"},
        timeout_s=60,
    )
    assert result.exit_code == 0, result.output
