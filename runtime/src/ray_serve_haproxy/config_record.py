"""The record of the last declared Serve config `serve-up` deployed on this cluster, in Ray's
internal key-value store. That store lives in the GCS, next to Serve's own checkpoints: the record
is kept (and removed) with the cluster's state, on RocksDB, Redis or (for the life of the head)
in memory. Needs a connected Ray driver (serve-up's)."""

from __future__ import annotations

import importlib
from types import ModuleType

from .declared_config import Record

RECORD_NAMESPACE = "ray-serve-haproxy"
RECORD_KEY = "declared-serve-config"


def log(message: str) -> None:
    print(f"serve-up: {message}", flush=True)


def _internal_kv() -> ModuleType:
    return importlib.import_module("ray.experimental.internal_kv")


def read_record() -> Record | None:
    """The last declared config serve-up deployed on this cluster (None: none on record)."""
    raw = _internal_kv()._internal_kv_get(RECORD_KEY, namespace=RECORD_NAMESPACE)
    if raw is None:
        return None
    try:
        return Record.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        log(f"WARNING: ignoring the record of the last deployed config, unreadable: {exc}")
        return None


def write_record(record: Record) -> None:
    try:
        _internal_kv()._internal_kv_put(
            RECORD_KEY, record.to_json(), overwrite=True, namespace=RECORD_NAMESPACE
        )
    except Exception as exc:  # the deploy happened; only the next start's decision suffers
        log(f"WARNING: could not record the deployed config ({exc}): the next start deploys it")


def forget_record() -> None:
    kv = _internal_kv()
    if kv._internal_kv_get(RECORD_KEY, namespace=RECORD_NAMESPACE) is not None:
        kv._internal_kv_del(RECORD_KEY, namespace=RECORD_NAMESPACE)
        log("forgot the record of the config deployed before (RSH_SERVE_CONFIG is unset)")
