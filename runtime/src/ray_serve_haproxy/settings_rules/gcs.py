"""Rules about GCS fault tolerance: combinations of the storage settings that cannot work.

The storage itself is the head's business; a worker only needs
RAY_gcs_rpc_server_reconnect_timeout_s, so the head-only rules skip `worker` and `entry`.
"""

from __future__ import annotations

from ..settings import GCS_MEMORY, GCS_ROCKSDB
from .context import Role, RuleContext
from .paths import dir_problem

STORAGE = ("gcs_storage", "gcs_storage_path", "redis_address", "external_storage_namespace")


def _head(ctx: RuleContext) -> bool:
    return ctx.role not in (Role.WORKER, Role.ENTRY)


def one_fault_tolerant_storage(ctx: RuleContext) -> None:
    """Not RocksDB and Redis at once."""
    if not ctx.valid(*STORAGE):
        return
    if ctx.values["gcs_storage"] == GCS_ROCKSDB and ctx.values["redis_address"] is not None:
        ctx.error(
            "redis_address",
            f"set together with RAY_gcs_storage={GCS_ROCKSDB}; allowed: one fault-tolerant "
            f"storage (unset RAY_REDIS_ADDRESS, or RAY_gcs_storage={GCS_MEMORY} for Redis)",
        )


def storage_path_only_with_rocksdb(ctx: RuleContext) -> None:
    """RAY_gcs_storage_path means nothing with memory storage: refuse a false sense of safety."""
    if not ctx.valid(*STORAGE):
        return
    if ctx.values["gcs_storage"] == GCS_MEMORY and ctx.values["gcs_storage_path"] is not None:
        ctx.error(
            "gcs_storage_path",
            f"set while RAY_gcs_storage={GCS_MEMORY}: Ray would not use it and the cluster's "
            f"state would still die with the head; allowed: RAY_gcs_storage={GCS_ROCKSDB}, or "
            "unset the path",
        )


def redis_password_needs_address(ctx: RuleContext) -> None:
    """RSH_REDIS_PASSWORD only with RAY_REDIS_ADDRESS."""
    if not ctx.valid(*STORAGE, "redis_password"):
        return
    if ctx.values["redis_password"] is not None and not ctx.values["redis_address"]:
        ctx.error(
            "redis_password",
            "set without RAY_REDIS_ADDRESS; allowed: only together with a Redis address",
        )


def rocksdb_has_writable_path(ctx: RuleContext) -> None:
    """Head with RocksDB: the storage path is set and writable."""
    if not ctx.valid(*STORAGE) or not _head(ctx) or ctx.values["gcs_storage"] != GCS_ROCKSDB:
        return
    path = ctx.values["gcs_storage_path"]
    if path is None:
        ctx.error(
            "gcs_storage_path",
            f"required with RAY_gcs_storage={GCS_ROCKSDB}; allowed: a writable directory "
            "on a volume that outlives the container, e.g. /var/lib/ray/gcs",
            value="",
        )
        return
    problem = dir_problem(path)
    if problem:
        ctx.error("gcs_storage_path", f"{problem}; allowed: a directory this user can write")


def redis_has_namespace(ctx: RuleContext) -> None:
    """Head with Redis: RAY_external_storage_namespace is set."""
    if not ctx.valid(*STORAGE) or not _head(ctx):
        return
    if ctx.values["redis_address"] is not None and ctx.values["external_storage_namespace"] is None:
        ctx.error(
            "external_storage_namespace",
            "required with RAY_REDIS_ADDRESS: the key prefix of this cluster's state, which a "
            "replacement head must use again and other clusters on the same Redis must not; "
            "allowed: e.g. the cluster's name",
            value="",
        )
