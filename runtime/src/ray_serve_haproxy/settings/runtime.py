"""Group "Runtime": the node's runtime: Serve's ports, the head, `ray start`, stop.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import (
    AbsPath,
    Choice,
    FilePath,
    Host,
    HostPort,
    ImportPathList,
    IntRange,
    PathList,
    Port,
    PortOrOff,
    ShellArgs,
)
from .limits import OBJECT_STORE_MINIMUM_BYTES, RAY_STOP_RESERVE_S
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class RuntimeSettings:
    head_address: str | None = setting(
        Spec(
            "RSH_HEAD_ADDRESS",
            Group.RUNTIME,
            HostPort(),
            "Address of the head's GCS that a worker joins (`ray start --address`). Required "
            "for `worker`; ignored on the head.",
            unset_means="unset (required by `worker`)",
        )
    )
    ray_port: int = setting(
        Spec(
            "RSH_RAY_PORT",
            Group.RUNTIME,
            Port(),
            "Head: GCS port (`ray start --port`).",
            default=6379,
        )
    )
    http_port: int = setting(
        Spec(
            "RSH_HTTP_PORT",
            Group.RUNTIME,
            Port(),
            "Serve's HTTP port, where HAProxy listens on 0.0.0.0 on every node it runs on "
            "(`http_options.port`, cluster-wide: use the same value on every node). The "
            "readiness probe asks `/-/healthz` here.",
            default=8000,
        )
    )
    grpc_port: int = setting(
        Spec(
            "RSH_GRPC_PORT",
            Group.RUNTIME,
            PortOrOff("gRPC off"),
            "Serve's gRPC port (`grpc_options.port`, cluster-wide like `RSH_HTTP_PORT`), where "
            "HAProxy opens its HTTP/2 gRPC frontend on 0.0.0.0 on every node it runs on. gRPC "
            "is on only when servicer functions are known too (`RSH_GRPC_SERVICER_FUNCTIONS` or "
            "the Serve config's `grpc_options`); `0` turns it off whatever they say.",
            default=9000,
        )
    )
    grpc_servicer_functions: tuple[str, ...] = setting(
        Spec(
            "RSH_GRPC_SERVICER_FUNCTIONS",
            Group.RUNTIME,
            ImportPathList(),
            "Head: gRPC `add_<Service>Servicer_to_server` functions Serve registers "
            "(`grpc_options.grpc_servicer_functions`), added to those of `RSH_SERVE_CONFIG`. "
            "Every node must be able to import them (`RSH_PYTHONPATH`).",
            default=(),
        )
    )
    dashboard_host: str = setting(
        Spec(
            "RSH_DASHBOARD_HOST",
            Group.RUNTIME,
            Host(),
            "Head: interface of the Ray dashboard and its REST API (`--dashboard-host`). "
            "`0.0.0.0` makes it reachable from outside the container.",
            default="127.0.0.1",
        )
    )
    dashboard_port: int = setting(
        Spec(
            "RSH_DASHBOARD_PORT",
            Group.RUNTIME,
            Port(),
            "Head: Ray dashboard port (`--dashboard-port`).",
            default=8265,
        )
    )
    num_cpus: int | None = setting(
        Spec(
            "RSH_NUM_CPUS",
            Group.RUNTIME,
            IntRange(0, 4096),
            "CPUs this node offers to Ray (`--num-cpus`); `0` keeps replicas off the node.",
            unset_means="unset (Ray detects)",
        )
    )
    object_store_memory: int = setting(
        Spec(
            "RSH_OBJECT_STORE_MEMORY",
            Group.RUNTIME,
            IntRange(OBJECT_STORE_MINIMUM_BYTES, 2**63 - 1, "bytes"),
            "Ray object store size in bytes (`--object-store-memory`). Unset: 30% of "
            "/dev/shm, at least Ray's minimum 78643200 (size /dev/shm with `--shm-size`).",
            derived="30% of /dev/shm, at least 78643200",
        )
    )
    serve_config: str | None = setting(
        Spec(
            "RSH_SERVE_CONFIG",
            Group.RUNTIME,
            FilePath(),
            "Head: the declared Serve config YAML, deployed when the cluster starts and on "
            "every head start where it changed since it was last applied, never when unchanged "
            "(docs/serve-config-lifecycle.md); its `http_options` "
            "host and port are forced to `0.0.0.0` and `RSH_HTTP_PORT`, its `grpc_options` "
            "port to `RSH_GRPC_PORT` (its servicer functions are kept, together with "
            "`RSH_GRPC_SERVICER_FUNCTIONS`).",
            unset_means="unset (no deploy)",
        )
    )
    serve_deploy_timeout_s: int = setting(
        Spec(
            "RSH_SERVE_DEPLOY_TIMEOUT_S",
            Group.RUNTIME,
            IntRange(1, 86_400, "seconds"),
            "Head: how long to wait for the cluster and then for every application of "
            "`RSH_SERVE_CONFIG` to be RUNNING before failing.",
            default=300,
        )
    )
    shutdown_timeout_s: int = setting(
        Spec(
            "RSH_SHUTDOWN_TIMEOUT_S",
            Group.RUNTIME,
            IntRange(RAY_STOP_RESERVE_S, 86_400, "seconds"),
            "Upper bound on a node's graceful stop (SIGTERM to the container, or `drain`): HAProxy "
            "stops accepting and finishes the requests in flight for up to this minus "
            f"{RAY_STOP_RESERVE_S} s, then `ray stop`, then whatever is left is killed. Give the "
            "container at least this + 5 s to stop (compose `stop_grace_period`, Kubernetes "
            "`terminationGracePeriodSeconds`, `docker run --stop-timeout`). Independent of "
            "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S.",
            default=25,
        )
    )
    kill_worker_children: str = setting(
        Spec(
            "RAY_kill_child_processes_on_worker_exit",
            Group.RUNTIME,
            Choice("false", "true", hint="Ray reads `true` or `1` as on, any other value as off."),
            "Whether a Ray worker process that exits SIGKILLs its direct children (Ray's "
            "variable, Ray's default `true`). `false` here: HAProxy is a direct child of Serve's "
            "HAProxyManager, and a manager exits that way when its node's raylet dies (the head's "
            "gcs_server killed), which would cut every request inside HAProxy; with `false` "
            "HAProxy outlives it and `run-ray` withdraws and drains it. What a replica spawns "
            "stays in the replica's process group, which the raylet kills when the replica "
            "exits, as before.",
            default="false",
            ray=True,
        )
    )
    state_dir: str = setting(
        Spec(
            "RSH_STATE_DIR",
            Group.RUNTIME,
            AbsPath(),
            "The runtime's private directory (mode 0700): supervisord config and control "
            "socket, role file, Serve markers.",
            default="/tmp/ray-serve-haproxy",
        )
    )
    ray_start_args: tuple[str, ...] = setting(
        Spec(
            "RSH_RAY_START_ARGS",
            Group.RUNTIME,
            ShellArgs(),
            "Extra `ray start` arguments, e.g. `--resources='{\"x\": 1}'`.",
            default=(),
        )
    )
    pythonpath: str | None = setting(
        Spec(
            "RSH_PYTHONPATH",
            Group.RUNTIME,
            PathList(),
            "Directories put in front of PYTHONPATH for Ray's processes, so replicas can "
            "import the application.",
            unset_means="unset",
        )
    )
