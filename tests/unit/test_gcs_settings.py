"""GCS fault tolerance settings: RocksDB on a volume or external Redis, the combinations that
cannot work, what reaches Ray, and that the Redis password never shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.ray_process import masked, ray_start_argv
from ray_serve_haproxy.settings_loader import EffectiveSettings, InvalidSettings, Role

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
PASSWORD = "s3cr3t pass%word"


def errors_of(load: Load, role: Role | None = None, /, **env: str) -> list[str]:
    with pytest.raises(InvalidSettings) as caught:
        load(role=role, **env)
    return [str(e) for e in caught.value.errors]


def test_rocksdb_on_a_writable_directory(load: Load, tmp_path: Path) -> None:
    storage = tmp_path / "volume" / "gcs"  # created by Ray; its parent must be writable
    effective = load(Role.HEAD, RAY_gcs_storage="rocksdb", RAY_gcs_storage_path=str(storage))
    env = effective.ray_env()
    assert env["RAY_gcs_storage"] == "rocksdb"
    assert env["RAY_gcs_storage_path"] == str(storage)
    assert env["RAY_gcs_rpc_server_reconnect_timeout_s"] == "60"


def test_rocksdb_without_a_path_is_refused_on_the_head(load: Load) -> None:
    (error,) = errors_of(load, Role.HEAD, RAY_gcs_storage="rocksdb")
    assert error.startswith("RAY_gcs_storage_path=''")
    assert "required with RAY_gcs_storage=rocksdb" in error
    # A worker does not open the storage: only the head needs the path.
    assert load(Role.WORKER, RAY_gcs_storage="rocksdb", RSH_HEAD_ADDRESS="head:6379")


def test_rocksdb_path_that_cannot_be_written(load: Load, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    (error,) = errors_of(
        load, Role.HEAD, RAY_gcs_storage="rocksdb", RAY_gcs_storage_path=f"{blocker}/gcs"
    )
    assert error.startswith("RAY_gcs_storage_path=") and "not a directory" in error


def test_a_path_without_rocksdb_is_refused(load: Load, tmp_path: Path) -> None:
    (error,) = errors_of(load, Role.HEAD, RAY_gcs_storage_path=str(tmp_path))
    assert "RAY_gcs_storage=memory" in error and "would not use it" in error


@pytest.mark.parametrize(
    "address",
    ["redis:6379", "redis://10.0.0.5:6379", "rediss://cache.example.com:6380", "r1:1,r2:2"],
)
def test_redis_with_a_namespace(load: Load, address: str) -> None:
    effective = load(
        Role.HEAD, RAY_REDIS_ADDRESS=address, RAY_external_storage_namespace="serve-prod"
    )
    env = effective.ray_env()
    assert env["RAY_REDIS_ADDRESS"] == address.replace(" ", "")
    assert env["RAY_external_storage_namespace"] == "serve-prod"
    assert env["RAY_gcs_storage"] == "memory"  # Ray picks Redis from the address


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("redis", "has no port"),
        ("redis:port", "port is not a number"),
        ("http://redis:6379", "unknown scheme"),
        ("redis:70000", "is not host:port"),
        (" , ", "no address"),
    ],
)
def test_bad_redis_addresses(load: Load, address: str, problem: str) -> None:
    (error,) = errors_of(load, Role.HEAD, RAY_REDIS_ADDRESS=address)
    assert error.startswith("RAY_REDIS_ADDRESS=") and problem in error


def test_redis_needs_a_namespace_on_the_head(load: Load) -> None:
    (error,) = errors_of(load, Role.HEAD, RAY_REDIS_ADDRESS="redis:6379")
    assert error.startswith("RAY_external_storage_namespace=''")
    assert "replacement head" in error


@pytest.mark.parametrize("namespace", ["-leading-dash", "has space", "x" * 257, "a/b"])
def test_bad_namespaces(load: Load, namespace: str) -> None:
    (error,) = errors_of(load, None, RAY_external_storage_namespace=namespace)
    assert error.startswith("RAY_external_storage_namespace=")


def test_rocksdb_and_redis_together_are_refused(load: Load, tmp_path: Path) -> None:
    errors = errors_of(
        load,
        Role.HEAD,
        RAY_gcs_storage="rocksdb",
        RAY_gcs_storage_path=str(tmp_path),
        RAY_REDIS_ADDRESS="redis:6379",
        RAY_external_storage_namespace="ns",
    )
    assert errors == [
        "RAY_REDIS_ADDRESS='redis:6379': set together with RAY_gcs_storage=rocksdb; allowed: one "
        "fault-tolerant storage (unset RAY_REDIS_ADDRESS, or RAY_gcs_storage=memory for Redis)"
    ]


def test_unknown_storage_is_refused(load: Load) -> None:
    (error,) = errors_of(load, Role.HEAD, RAY_gcs_storage="redis")
    assert "not one of these words" in error and "`memory` or `rocksdb`" in error
    assert "For Redis set RAY_REDIS_ADDRESS" in error


@pytest.mark.parametrize(("raw", "ok"), [("300", True), ("1", True), ("0", False), ("1m", False)])
def test_reconnect_timeout(load: Load, raw: str, ok: bool) -> None:
    if ok:
        effective = load(
            Role.WORKER, RSH_HEAD_ADDRESS="h:1", RAY_gcs_rpc_server_reconnect_timeout_s=raw
        )
        assert effective.ray_env()["RAY_gcs_rpc_server_reconnect_timeout_s"] == raw
    else:
        (error,) = errors_of(load, None, RAY_gcs_rpc_server_reconnect_timeout_s=raw)
        assert error.startswith("RAY_gcs_rpc_server_reconnect_timeout_s=")


def test_password_without_redis_is_refused_and_never_shown(load: Load) -> None:
    (error,) = errors_of(load, Role.HEAD, RSH_REDIS_PASSWORD=PASSWORD)
    assert "set without RAY_REDIS_ADDRESS" in error
    assert PASSWORD not in error and "********" in error


def test_invalid_password_is_not_echoed(load: Load) -> None:
    (error,) = errors_of(load, Role.HEAD, RSH_REDIS_PASSWORD="line1\nline2")
    assert "line1" not in error and "<hidden, 11 characters>" in error


def test_password_reaches_ray_start_on_the_head_only_and_is_masked(load: Load) -> None:
    effective = load(
        Role.HEAD,
        RAY_REDIS_ADDRESS="redis:6379",
        RAY_external_storage_namespace="ns",
        RSH_REDIS_PASSWORD=PASSWORD,
    )
    values = effective.values
    assert values.redis_password == PASSWORD
    head = ray_start_argv(values, Role.HEAD, ray="ray")
    assert f"--redis-password={PASSWORD}" in head
    assert PASSWORD not in masked(head) and "--redis-password=********" in masked(head)
    assert PASSWORD not in masked(["ray", "start", "--redis-password", PASSWORD])
    worker_values = load(
        Role.WORKER, RSH_HEAD_ADDRESS="head:6379", RAY_REDIS_ADDRESS="redis:6379"
    ).values
    assert not any("redis-password" in a for a in ray_start_argv(worker_values, Role.WORKER, "r"))
    # Neither Ray's environment nor the rows `config` prints carry it.
    assert PASSWORD not in json.dumps(effective.ray_env())
    assert PASSWORD not in repr(effective.rows())


def test_config_shows_the_storage_in_effect_and_masks_the_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    private_paths: dict[str, str],
) -> None:
    for name, value in private_paths.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAY_REDIS_ADDRESS", "redis:6379")
    monkeypatch.setenv("RAY_external_storage_namespace", "cluster-a")
    monkeypatch.setenv("RSH_REDIS_PASSWORD", PASSWORD)
    assert main(["config", "--json", "--role", "head"]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out
    data = json.loads(out)["settings"]
    assert data["RAY_REDIS_ADDRESS"] == {"value": "redis:6379", "source": "environment"}
    assert data["RAY_external_storage_namespace"]["value"] == "cluster-a"
    assert data["RSH_REDIS_PASSWORD"] == {"value": "********", "source": "environment"}
    assert data["RAY_gcs_storage"] == {"value": "memory", "source": "default"}
    assert main(["config", "--role", "head"]) == 0
    assert PASSWORD not in capsys.readouterr().out
