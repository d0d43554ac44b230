"""Group "GCS fault tolerance": where the head keeps the cluster's state.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import AbsPath, Choice, IntRange, Password, RedisAddressList, StorageNamespace
from .spec import Group, Spec, setting

# Values of RAY_gcs_storage (Ray's own; Redis is chosen by RAY_REDIS_ADDRESS instead).
GCS_MEMORY = "memory"
GCS_ROCKSDB = "rocksdb"


@dataclass(frozen=True)
class GcsSettings:
    gcs_storage: str = setting(
        Spec(
            "RAY_gcs_storage",
            Group.GCS,
            Choice(
                GCS_MEMORY,
                GCS_ROCKSDB,
                hint="For Redis set RAY_REDIS_ADDRESS and leave this `memory`.",
            ),
            "Head: where the GCS keeps the cluster's state (Ray's variable). `memory` (Ray's "
            "default): the state dies with the head, so a restarted head starts a new cluster "
            "and the workers restart too. `rocksdb`: Ray 2.60's embedded storage in "
            "`RAY_gcs_storage_path`; a restarted or replaced head recovers the cluster while "
            "workers, replicas and their HAProxy keep serving. For external Redis set "
            "`RAY_REDIS_ADDRESS` instead and leave this `memory`.",
            default=GCS_MEMORY,
            ray=True,
        )
    )
    gcs_storage_path: str | None = setting(
        Spec(
            "RAY_gcs_storage_path",
            Group.GCS,
            AbsPath(),
            "Head: directory of the RocksDB storage (Ray's variable); required with "
            "`RAY_gcs_storage=rocksdb` and must be writable. Put it on a volume so that it "
            "outlives the container (compose: the named volume `gcs`).",
            unset_means="unset",
            ray=True,
        )
    )
    redis_address: tuple[str, ...] | None = setting(
        Spec(
            "RAY_REDIS_ADDRESS",
            Group.GCS,
            RedisAddressList(),
            "Head: external Redis that keeps the GCS state (Ray's variable), the other "
            "fault-tolerant storage; needs `RAY_external_storage_namespace`, excludes "
            "`RAY_gcs_storage=rocksdb`. Use a Redis that is itself highly available.",
            unset_means="unset (no Redis)",
            ray=True,
        )
    )
    redis_password: str | None = setting(
        Spec(
            "RSH_REDIS_PASSWORD",
            Group.GCS,
            Password(),
            "Head: password of `RAY_REDIS_ADDRESS`, passed as `ray start --redis-password` "
            "(Ray has no variable for it). Masked in `config` and logs.",
            unset_means="unset",
            secret=True,
        )
    )
    external_storage_namespace: str | None = setting(
        Spec(
            "RAY_external_storage_namespace",
            Group.GCS,
            StorageNamespace(),
            "Head: prefix of this cluster's keys in Redis (Ray's variable). Required with "
            "`RAY_REDIS_ADDRESS`: a replacement head must use the same one to recover the "
            "cluster, and clusters sharing one Redis must use different ones (KubeRay uses "
            "the RayCluster's UID).",
            unset_means="unset (Ray's `default`)",
            ray=True,
        )
    )
    gcs_reconnect_timeout_s: int = setting(
        Spec(
            "RAY_gcs_rpc_server_reconnect_timeout_s",
            Group.GCS,
            IntRange(1, 86_400, "seconds"),
            "Every node: how long Ray's processes keep running without the head's GCS "
            "before they give up and exit (Ray's variable and default). With fault-tolerant "
            "storage, workers keep serving for this long while the head restarts or is "
            "replaced: size it above that time (compose: 300).",
            default=60,
            ray=True,
        )
    )
