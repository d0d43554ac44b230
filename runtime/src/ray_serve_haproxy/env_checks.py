"""`check`: the environment around valid settings - HAProxy's build, socat, ports, directories.

Meant to run before a node starts (ports in use by a running node show as busy).
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .auth_token import TokenFileError, read_token_file
from .exposure import observed, planned
from .host_facts import HostFacts
from .listeners import Listener, listening
from .placement import ConfigAsks, Deployment, Node, asks_of, problems, report
from .processes import haproxy_processes, pids_by_comm
from .settings_loader import EffectiveSettings, Role, Source
from .state_dir import private_dir_problem, private_dirs

# Features Ray's generated config needs (PCRE may be PCRE2 in newer builds).
REQUIRED_FEATURES: tuple[tuple[str, ...], ...] = (
    ("OPENSSL",),
    ("ZLIB",),
    ("PCRE", "PCRE2"),
    ("LUA",),
    ("PROMEX",),
)


class Level(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    level: Level
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.level.value:<4}  {self.subject}: {self.detail}"


def parse_haproxy_vv(text: str) -> tuple[str | None, set[str]]:
    """(version, enabled features) from `haproxy -vv`."""
    version = re.search(r"HAProxy version (\S+)", text)
    features = re.search(r"^Feature list : (.*)$", text, re.M)
    enabled = {f[1:] for f in features.group(1).split() if f.startswith("+")} if features else set()
    return (version.group(1) if version else None), enabled


def missing_features(enabled: set[str]) -> list[str]:
    return [
        "/".join(alternatives)
        for alternatives in REQUIRED_FEATURES
        if not enabled.intersection(alternatives)
    ]


def check_haproxy(binary: str) -> Finding:
    if not binary:
        return Finding(Level.FAIL, "haproxy", "no binary found: set RAY_SERVE_HAPROXY_BINARY_PATH")
    try:
        result = subprocess.run(
            [binary, "-vv"], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding(Level.FAIL, "haproxy", f"{binary} -vv failed: {exc}")
    version, enabled = parse_haproxy_vv(result.stdout + result.stderr)
    if version is None:
        return Finding(Level.FAIL, "haproxy", f"{binary} -vv printed no version")
    missing = missing_features(enabled)
    if missing:
        return Finding(Level.FAIL, "haproxy", f"{binary} {version} lacks +{', +'.join(missing)}")
    shown = " ".join(f"+{f}" for alts in REQUIRED_FEATURES for f in alts if f in enabled)
    return Finding(Level.OK, "haproxy", f"{binary} {version} ({shown})")


def check_socat() -> Finding:
    path = shutil.which("socat")
    if path:
        return Finding(Level.OK, "socat", path)
    return Finding(Level.FAIL, "socat", "not on PATH (the guide's admin-socket tool)")


def bind_problem(port: int, host: str = "0.0.0.0", udp: bool = False) -> str | None:
    """Why nothing could bind `port` now, or None when it is free."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        # Like a server would: TIME_WAIT leftovers do not make a port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except PermissionError:
            return "permission denied (a port below net.ipv4.ip_unprivileged_port_start)"
        except OSError as exc:
            return "in use" if exc.errno == errno.EADDRINUSE else str(exc)
    return None


def check_ports(effective: EffectiveSettings, role: Role) -> list[Finding]:
    values = effective.values
    findings = []
    fixed = [
        ("RSH_HTTP_PORT", values.http_port),
        ("RAY_SERVE_HAPROXY_METRICS_PORT", values.metrics_port),
        ("RAY_SERVE_HAPROXY_STATS_PORT", values.stats_port),
    ]
    if values.grpc_port:
        fixed.append(("RSH_GRPC_PORT", values.grpc_port))
    if role == Role.HEAD:
        fixed += [("RSH_RAY_PORT", values.ray_port), ("RSH_DASHBOARD_PORT", values.dashboard_port)]
    for name, port in fixed:
        problem = bind_problem(port)
        level = Level.FAIL if problem else Level.OK
        findings.append(Finding(level, f"tcp {port} ({name})", problem or "free"))
    syslog = effective.syslog_receiver_port
    if syslog is not None:
        problem = bind_problem(syslog, "127.0.0.1", udp=True)
        level = Level.FAIL if problem else Level.OK
        subject = f"udp 127.0.0.1:{syslog} (RAY_SERVE_HAPROXY_SYSLOG_PORT)"
        findings.append(Finding(level, subject, problem or "free"))
    for label, low, high in (
        ("HTTP", values.direct_ingress_min_http_port, values.direct_ingress_max_http_port),
        ("gRPC", values.direct_ingress_min_grpc_port, values.direct_ingress_max_grpc_port),
    ):
        busy = [port for port in range(low, high + 1) if bind_problem(port)]
        subject = f"tcp {low}-{high} (replica {label} ports)"
        if busy:
            shown = ", ".join(map(str, busy[:10])) + (" ..." if len(busy) > 10 else "")
            findings.append(Finding(Level.FAIL, subject, f"{len(busy)} busy: {shown}"))
        else:
            findings.append(Finding(Level.OK, subject, "all free"))
    return findings


def check_dirs(effective: EffectiveSettings) -> list[Finding]:
    findings = []
    for directory in private_dirs(effective.values):
        problem = private_dir_problem(directory)
        if problem:
            findings.append(Finding(Level.FAIL, directory, f"{problem} (must be private)"))
        elif os.path.isdir(directory):
            findings.append(Finding(Level.OK, directory, "private (mode 0700)"))
        else:
            findings.append(Finding(Level.OK, directory, "absent; created with mode 0700 at start"))
    return findings


def check_resources(effective: EffectiveSettings, facts: HostFacts) -> list[Finding]:
    values = effective.values
    findings = []
    if effective.sources["RAY_SERVE_HAPROXY_MAXCONN"] == Source.DERIVED:
        findings.append(
            Finding(
                Level.WARN,
                "RAY_SERVE_HAPROXY_MAXCONN",
                f"lowered to {values.maxconn} to fit the open-files limit {facts.nofile_hard} "
                "(raise it, e.g. docker run --ulimit nofile=65536:65536, for the guide's 20000)",
            )
        )
    if values.nbthread > facts.cpus:
        findings.append(
            Finding(
                Level.WARN,
                "RAY_SERVE_HAPROXY_NBTHREAD",
                f"{values.nbthread} threads on {facts.cpus} CPU(s): HAProxy warns of severe "
                "performance degradation",
            )
        )
    if facts.shm_bytes is not None and values.object_store_memory > facts.shm_bytes:
        findings.append(
            Finding(
                Level.WARN,
                "RSH_OBJECT_STORE_MEMORY",
                f"{values.object_store_memory} bytes exceed /dev/shm ({facts.shm_bytes}); Ray "
                "falls back to slower disk: give the container a larger --shm-size",
            )
        )
    return findings


def ephemeral_port_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> range | None:
    try:
        low, high = (int(x) for x in Path(path).read_text().split())
    except (OSError, ValueError):
        return None
    return range(low, high + 1)


def check_ephemeral_overlap(effective: EffectiveSettings, ephemeral: range | None) -> list[Finding]:
    """Replica ports inside the kernel's ephemeral range can be taken by outgoing connections
    (Ray then retries another port, RAY_SERVE_DIRECT_INGRESS_PORT_RETRY_COUNT times)."""
    if ephemeral is None:
        return []
    values = effective.values
    findings = []
    for label, low, high in (
        ("HTTP", values.direct_ingress_min_http_port, values.direct_ingress_max_http_port),
        ("gRPC", values.direct_ingress_min_grpc_port, values.direct_ingress_max_grpc_port),
    ):
        if low <= ephemeral.stop - 1 and ephemeral.start <= high:
            findings.append(
                Finding(
                    Level.WARN,
                    f"replica {label} ports {low}-{high}",
                    f"overlap the ephemeral range {ephemeral.start}-{ephemeral.stop - 1} "
                    "(net.ipv4.ip_local_port_range): outgoing connections may hold some",
                )
            )
    return findings


def _start_arg(args: tuple[str, ...], option: str) -> str | None:
    """The value of `--option=V` or `--option V` in `ray start` arguments (the last wins)."""
    value = None
    for index, arg in enumerate(args):
        if arg.startswith(f"{option}="):
            value = arg.split("=", 1)[1]
        elif arg == option and index + 1 < len(args):
            value = args[index + 1]
    return value


def this_node(effective: EffectiveSettings, role: Role, facts: HostFacts) -> Node:
    """What this node will offer replicas: its CPUs (RSH_NUM_CPUS, else those Ray detects), and
    GPUs and custom resources of RSH_RAY_START_ARGS."""
    values = effective.values
    offered: dict[str, float] = {
        "CPU": values.num_cpus if values.num_cpus is not None else facts.cpus
    }
    gpus = _start_arg(values.ray_start_args, "--num-gpus")
    custom = _start_arg(values.ray_start_args, "--resources")
    try:
        if gpus is not None:
            offered["GPU"] = float(gpus)
        if custom is not None:
            offered.update({str(k): float(v) for k, v in json.loads(custom).items()})
    except (ValueError, AttributeError):
        pass  # Ray refuses it at start, with its own message
    return Node.of(f"this {role.value}", offered)


def _without_memory(asks: ConfigAsks) -> ConfigAsks:
    """Ray's `memory` resource depends on what the node has free once running: not judged
    before start."""
    deployments = [
        Deployment(
            d.app,
            d.name,
            d.replicas,
            {r: u for r, u in d.ask.items() if r != "memory"},
            d.max_per_node,
            d.assumed,
        )
        for d in asks.deployments
    ]
    return ConfigAsks(deployments, asks.unchecked)


def check_placement(effective: EffectiveSettings, role: Role, facts: HostFacts) -> list[Finding]:
    """Head with RSH_SERVE_CONFIG: can the config be placed on this node alone? A WARN, not a
    FAIL: workers may join (the compose head offers no CPUs on purpose)."""
    path = effective.values.serve_config
    if role != Role.HEAD or not path:
        return []
    subject = f"placement of {path}"
    try:
        yaml = importlib.import_module("yaml")  # PyYAML comes with Ray
        config = yaml.safe_load(Path(path).read_text())
        asks = _without_memory(asks_of(config))
    except Exception as exc:  # the head's serve-up reports a broken config in detail
        return [Finding(Level.WARN, subject, f"cannot read it: {exc}")]
    node = this_node(effective, role, facts)
    where = "on this node alone"
    if not problems(asks, [node]):
        return [Finding(Level.OK, subject, report(asks, [node], where))]
    hint = (
        "; it needs worker nodes that offer what is missing"
        + (" (this head has RSH_NUM_CPUS=0)" if effective.values.num_cpus == 0 else "")
        + ", or a config that fits one node (examples/demo/serve_config.one-node.yaml)"
    )
    return [Finding(Level.WARN, subject, report(asks, [node], where) + hint)]


def check_applications(effective: EffectiveSettings, role: Role) -> list[Finding]:
    """HAProxy mode on the head: RSH_SERVE_CONFIG's applications that rely on something
    HAProxy mode drops (app_scan.py; read, never imported)."""
    from .app_scan import read_serve_config, scan_config, search_path_of

    values = effective.values
    if role != Role.HEAD or not values.serve_config or not values.enable_ha_proxy:
        return []
    subject = "RSH_SERVE_CONFIG"
    try:
        config = read_serve_config(values.serve_config)
    except ValueError as exc:
        return [Finding(Level.WARN, subject, f"applications not inspected: {exc}")]
    result = scan_config(config, search_path_of(values.pythonpath))
    findings = [
        Finding(Level.WARN, f"{subject} application {r.app!r}", str(r)) for r in result.reliances
    ]
    findings += [
        Finding(Level.WARN, subject, f"not inspected for HAProxy mode: {why}")
        for why in result.not_inspected
    ]
    if not findings:
        count = len(config.get("applications") or [])
        findings.append(
            Finding(
                Level.OK,
                subject,
                f"{count} application(s) inspected: none relies on a feature HAProxy mode drops",
            )
        )
    return findings


def check_exposure(
    effective: EffectiveSettings,
    role: Role,
    facts: HostFacts,
    sockets: Sequence[Listener] | None,
) -> list[Finding]:
    """Which ports this node listens on (`sockets`, when it runs) or will (None), on which
    interfaces, and who should reach them: WARN for operator and code ports beyond loopback."""
    values, addresses = effective.values, facts.local_addresses
    exposures = (
        planned(values, role, addresses)
        if sockets is None
        else observed(values, role, sockets, addresses)
    )
    return [Finding(Level.WARN if e.warn else Level.OK, e.subject, e.detail) for e in exposures]


def ray_runs_here() -> bool:
    return bool(pids_by_comm(["raylet"])["raylet"])


def check_auth(effective: EffectiveSettings) -> Finding:
    """Which authentication Ray's control plane runs with, and where the token comes from
    (its length only)."""
    values = effective.values
    if values.auth_mode != "token":
        return Finding(
            Level.WARN,
            "RAY_AUTH_MODE",
            f"{values.auth_mode}: anyone who reaches the GCS (port {values.ray_port}) or the "
            f"dashboard (port {values.dashboard_port}) can run code on every node",
        )
    if values.auth_token is not None:
        return Finding(
            Level.OK,
            "RAY_AUTH_MODE",
            f"token, from RAY_AUTH_TOKEN ({len(values.auth_token)} characters; the environment "
            "of every process in this container holds it)",
        )
    try:
        token = read_token_file(values.auth_token_path).token
    except TokenFileError as exc:
        return Finding(Level.FAIL, "RAY_AUTH_MODE", f"token, but {values.auth_token_path}: {exc}")
    return Finding(
        Level.OK,
        "RAY_AUTH_MODE",
        f"token, from the file {values.auth_token_path} ({len(token)} characters)",
    )


def run_checks(
    effective: EffectiveSettings,
    role: Role,
    facts: HostFacts,
    ports: bool = True,
    running: bool | None = None,
) -> list[Finding]:
    """Every check; `running` (default: a raylet runs here) turns the free-port checks, which
    this node's own listeners would fail, into a report of those listeners."""
    if role == Role.ENTRY:
        return check_entry(effective, facts, ports, running)
    running = ray_runs_here() if running is None else running
    findings = [check_auth(effective)]
    if effective.values.enable_ha_proxy:
        findings.append(check_haproxy(effective.values.haproxy_binary_path))
        findings.append(check_socat())
    else:
        findings.append(Finding(Level.WARN, "RAY_SERVE_ENABLE_HA_PROXY", "0: Python proxy mode"))
    findings += check_dirs(effective)
    findings += check_resources(effective, facts)
    findings += check_placement(effective, role, facts)
    findings += check_ephemeral_overlap(effective, ephemeral_port_range())
    findings += check_applications(effective, role)
    if ports and not running:
        findings += check_ports(effective, role)
    findings += check_exposure(effective, role, facts, listening() if running else None)
    return findings


def check_entry(
    effective: EffectiveSettings, facts: HostFacts, ports: bool, running: bool | None
) -> list[Finding]:
    """The entry runs only HAProxy, over the nodes' client ports: its binary, directory,
    resources and its own three ports. No token (it talks to no Ray), no replica ranges."""
    values = effective.values
    running = bool(haproxy_processes(values.haproxy_binary_path)) if running is None else running
    findings = [
        Finding(Level.OK, "RAY_AUTH_MODE", "entry: runs no Ray and needs no token"),
        check_haproxy(values.haproxy_binary_path),
    ]
    problem = private_dir_problem(values.state_dir)
    findings.append(
        Finding(Level.FAIL, values.state_dir, f"{problem} (must be private)")
        if problem
        else Finding(Level.OK, values.state_dir, "private (mode 0700), or created so at start")
    )
    findings += check_resources(effective, facts)
    if ports and not running:
        own = [("RSH_HTTP_PORT", values.http_port, "0.0.0.0")]
        if values.grpc_port:
            own.append(("RSH_GRPC_PORT", values.grpc_port, "0.0.0.0"))
        own.append(
            ("RAY_SERVE_HAPROXY_METRICS_PORT", values.metrics_port, values.entry_metrics_host)
        )
        for name, port, host in own:
            problem = bind_problem(port, host)
            level = Level.FAIL if problem else Level.OK
            findings.append(Finding(level, f"tcp {host}:{port} ({name})", problem or "free"))
    return findings
