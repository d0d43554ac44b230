"""Each rule between settings (settings_rules) on its own: the error it reports for a bad
combination (variable, value shown, problem) and a near miss it lets through."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from ray_serve_haproxy import settings_rules
from ray_serve_haproxy.host_facts import HostFacts
from ray_serve_haproxy.settings_loader import parse_settings
from ray_serve_haproxy.settings_rules import RULES, Role, Rule, RuleContext, SettingError

pytestmark = pytest.mark.unit

NODE_ADDRESSES = {"10.0.0.5": "eth0", "127.0.0.1": "lo"}
# A per-node socket path Ray would make longer than 97 (HAProxy) or 107 (kernel) characters.
LONG_DIR = "/tmp/" + "d" * 45


@dataclass(frozen=True)
class Case:
    rule: Rule
    env: dict[str, str]
    # (variable, value shown, part of the problem) of each error; empty: the rule passes.
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    role: Role | None = None
    facts: dict[str, object] = field(default_factory=dict)  # HostFacts fields to change

    @property
    def id(self) -> str:
        env = ",".join(f"{k}={v}" for k, v in self.env.items())
        verdict = "refused" if self.errors else "passes"
        return f"{self.rule.__name__}-{verdict}-{self.role or ''}-{env}"[:120]


R = settings_rules
CASES = [
    Case(
        R.replica_ranges_ordered,
        {"RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "31001"},
        [
            (
                "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
                "31001",
                "greater than RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=31000; allowed: at most that",
            )
        ],
    ),
    Case(R.replica_ranges_ordered, {"RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "31000"}),
    Case(
        R.replica_ranges_disjoint,
        {
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": "30500",
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": "31500",
        },
        [
            (
                "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT",
                "30500",
                "replica gRPC range 30500-31500 overlaps the HTTP range 30000-31000",
            )
        ],
    ),
    Case(
        R.replica_ranges_disjoint,
        {
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": "31001",
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": "31500",
        },
    ),
    Case(
        R.fixed_ports_outside_replica_ranges,
        {"RSH_HTTP_PORT": "30500"},
        [("RSH_HTTP_PORT", "30500", "RSH_HTTP_PORT=30500 lies in the replica HTTP port range")],
    ),
    # A range moved onto a default port: the range is the user's doing.
    Case(
        R.fixed_ports_outside_replica_ranges,
        {
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "8000",
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": "8001",
        },
        [("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "8000", "RSH_HTTP_PORT=8000 lies in")],
    ),
    Case(R.fixed_ports_outside_replica_ranges, {"RSH_HTTP_PORT": "29999"}),
    Case(
        R.tcp_ports_distinct,
        {"RSH_DASHBOARD_PORT": "8000"},
        [("RSH_DASHBOARD_PORT", "8000", "same port as RSH_HTTP_PORT; allowed: a port no other")],
    ),
    # The syslog port is UDP: it may share a number with a TCP port.
    Case(R.tcp_ports_distinct, {"RAY_SERVE_HAPROXY_SYSLOG_PORT": "8000"}),
    Case(
        R.worker_range_ordered,
        {"RSH_MIN_WORKER_PORT": "19999"},
        [("RSH_MIN_WORKER_PORT", "19999", "not below RSH_MAX_WORKER_PORT=19999; allowed:")],
    ),
    Case(R.worker_range_ordered, {"RSH_MIN_WORKER_PORT": "19998"}),
    Case(
        R.worker_range_clear_of_replica_ranges,
        {"RSH_MAX_WORKER_PORT": "30500"},
        [
            (
                "RSH_MAX_WORKER_PORT",
                "30500",
                "worker port range 10002-30500 overlaps the replica HTTP range 30000-31000",
            )
        ],
    ),
    Case(R.worker_range_clear_of_replica_ranges, {"RSH_MAX_WORKER_PORT": "29999"}),
    Case(
        R.fixed_ports_outside_worker_range,
        {"RSH_METRICS_EXPORT_PORT": "15000"},
        [
            (
                "RSH_METRICS_EXPORT_PORT",
                "15000",
                "RSH_METRICS_EXPORT_PORT=15000 lies in Ray's worker port range 10002-19999",
            )
        ],
    ),
    Case(R.fixed_ports_outside_worker_range, {"RSH_METRICS_EXPORT_PORT": "20000"}),
    Case(
        R.ray_start_args_not_owned,
        {"RSH_RAY_START_ARGS": "--node-manager-port=7000 --include-dashboard=false"},
        [
            (
                "RSH_RAY_START_ARGS",
                "--node-manager-port=7000 --include-dashboard=false",
                "sets --node-manager-port, which RSH_NODE_MANAGER_PORT owns; allowed: set "
                "RSH_NODE_MANAGER_PORT instead",
            )
        ],
    ),
    Case(R.ray_start_args_not_owned, {"RSH_RAY_START_ARGS": "--include-dashboard=false"}),
    Case(
        R.node_ip_is_local,
        {"RSH_NODE_IP": "10.9.9.9"},
        [("RSH_NODE_IP", "10.9.9.9", "allowed: one of 10.0.0.5 (eth0), 127.0.0.1 (lo)")],
        facts={"local_addresses": NODE_ADDRESSES},
    ),
    Case(
        R.node_ip_is_local, {"RSH_NODE_IP": "10.0.0.5"}, facts={"local_addresses": NODE_ADDRESSES}
    ),
    Case(
        R.ports_clear_of_fallback_proxy,
        {"RSH_HTTP_PORT": "8500"},
        [
            (
                "RSH_HTTP_PORT",
                "8500",
                "same port as Serve's fallback proxy on the head "
                "(RAY_SERVE_FALLBACK_PROXY_HTTP_PORT=8500)",
            )
        ],
    ),
    # Ray's own variable moves the fallback proxy out of the way.
    Case(
        R.ports_clear_of_fallback_proxy,
        {"RSH_HTTP_PORT": "8500", "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": "8600"},
    ),
    Case(
        R.log_target_matches_syslog_port,
        {"RAY_SERVE_HAPROXY_LOG_TARGET": "127.0.0.1:5140"},
        [
            (
                "RAY_SERVE_HAPROXY_LOG_TARGET",
                "127.0.0.1:5140",
                "sends to local port 5140 but the runtime's receiver listens on "
                "RAY_SERVE_HAPROXY_SYSLOG_PORT=514",
            )
        ],
    ),
    Case(
        R.log_target_matches_syslog_port,
        {"RAY_SERVE_HAPROXY_LOG_TARGET": "127.0.0.1:5140", "RAY_SERVE_HAPROXY_SYSLOG_PORT": "5140"},
    ),
    Case(
        R.hard_stop_covers_server_timeout,
        {"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "600", "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "300"},
        [
            (
                "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S",
                "300",
                "shorter than RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S=600",
            )
        ],
    ),
    Case(
        R.hard_stop_covers_server_timeout,
        {"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "600", "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "600"},
    ),
    Case(
        R.maxconn_fits_open_files,
        {"RAY_SERVE_HAPROXY_MAXCONN": "20000"},
        [
            (
                "RAY_SERVE_HAPROXY_MAXCONN",
                "20000",
                "HAProxy would need about 50100 open files but the hard limit (ulimit -Hn) is "
                "4096; allowed: at most 1598 here",
            )
        ],
        facts={"nofile_hard": 4096},
    ),
    Case(
        R.maxconn_fits_open_files,
        {"RAY_SERVE_HAPROXY_MAXCONN": "1598"},
        facts={"nofile_hard": 4096},
    ),
    Case(
        R.socket_paths_fit,
        {
            "RAY_SERVE_HAPROXY_SOCKET_PATH": f"{LONG_DIR}/admin.sock",
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": f"{LONG_DIR}/metrics-socket.sock",
        },
        [
            ("RAY_SERVE_HAPROXY_SOCKET_PATH", f"{LONG_DIR}/admin.sock", "is 118 characters"),
            (
                "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
                f"{LONG_DIR}/metrics-socket.sock",
                "is 127 characters; allowed: at most 107",
            ),
        ],
    ),
    Case(R.socket_paths_fit, {"RAY_SERVE_HAPROXY_SOCKET_PATH": "/tmp/" + "d" * 24 + "/admin.sock"}),
    Case(
        R.directories_creatable,
        {"RSH_STATE_DIR": "{tmp}/a-file/state"},
        [("RSH_STATE_DIR", "{tmp}/a-file/state", "{tmp}/a-file is not a directory; allowed:")],
    ),
    Case(R.directories_creatable, {"RSH_STATE_DIR": "{tmp}/not/yet/there"}),
    Case(
        R.haproxy_binary_found,
        {"RAY_SERVE_HAPROXY_BINARY_PATH": "{tmp}/a-file"},
        [("RAY_SERVE_HAPROXY_BINARY_PATH", "{tmp}/a-file", "no executable file there")],
    ),
    Case(
        R.haproxy_binary_found,
        {"RAY_SERVE_ENABLE_HA_PROXY": "1"},
        [("RAY_SERVE_HAPROXY_BINARY_PATH", "", "HAProxy mode is on but no haproxy was found")],
        facts={"haproxy_binary": None},
    ),
    Case(R.haproxy_binary_found, {"RAY_SERVE_HAPROXY_BINARY_PATH": sys.executable}),
    Case(
        R.serve_config_readable,
        {"RSH_SERVE_CONFIG": "{tmp}/missing.yaml"},
        [("RSH_SERVE_CONFIG", "{tmp}/missing.yaml", "no readable file there")],
    ),
    Case(R.serve_config_readable, {"RSH_SERVE_CONFIG": "{tmp}/a-file"}),
    Case(
        R.worker_has_head_address,
        {},
        [("RSH_HEAD_ADDRESS", "", "required for `worker`")],
        role=Role.WORKER,
    ),
    Case(R.worker_has_head_address, {"RSH_HEAD_ADDRESS": "head:6379"}, role=Role.WORKER),
    Case(R.entry_has_nodes, {}, [("RSH_ENTRY_NODES", "", "required for `entry`")], role=Role.ENTRY),
    Case(R.entry_has_nodes, {"RSH_ENTRY_NODES": "head,worker"}, role=Role.ENTRY),
    Case(
        R.one_fault_tolerant_storage,
        {"RAY_gcs_storage": "rocksdb", "RAY_REDIS_ADDRESS": "redis:6379"},
        [("RAY_REDIS_ADDRESS", "redis:6379", "set together with RAY_gcs_storage=rocksdb")],
    ),
    Case(R.one_fault_tolerant_storage, {"RAY_REDIS_ADDRESS": "redis:6379"}),
    Case(
        R.storage_path_only_with_rocksdb,
        {"RAY_gcs_storage_path": "/var/lib/ray/gcs"},
        [("RAY_gcs_storage_path", "/var/lib/ray/gcs", "set while RAY_gcs_storage=memory")],
    ),
    Case(
        R.storage_path_only_with_rocksdb,
        {"RAY_gcs_storage": "rocksdb", "RAY_gcs_storage_path": "/var/lib/ray/gcs"},
    ),
    Case(
        R.redis_password_needs_address,
        {"RSH_REDIS_PASSWORD": "hunter2-hunter2"},
        [("RSH_REDIS_PASSWORD", "********", "set without RAY_REDIS_ADDRESS")],
    ),
    Case(
        R.redis_password_needs_address,
        {"RSH_REDIS_PASSWORD": "hunter2-hunter2", "RAY_REDIS_ADDRESS": "redis:6379"},
    ),
    Case(
        R.rocksdb_has_writable_path,
        {"RAY_gcs_storage": "rocksdb"},
        [("RAY_gcs_storage_path", "", "required with RAY_gcs_storage=rocksdb")],
    ),
    Case(
        R.rocksdb_has_writable_path,
        {"RAY_gcs_storage": "rocksdb", "RAY_gcs_storage_path": "{tmp}/a-file/gcs"},
        [("RAY_gcs_storage_path", "{tmp}/a-file/gcs", "{tmp}/a-file is not a directory")],
    ),
    Case(
        R.rocksdb_has_writable_path,
        {"RAY_gcs_storage": "rocksdb", "RAY_gcs_storage_path": "{tmp}/gcs"},
    ),
    # The storage is the head's business: a worker does not check it.
    Case(R.rocksdb_has_writable_path, {"RAY_gcs_storage": "rocksdb"}, role=Role.WORKER),
    Case(
        R.redis_has_namespace,
        {"RAY_REDIS_ADDRESS": "redis:6379"},
        [("RAY_external_storage_namespace", "", "required with RAY_REDIS_ADDRESS")],
    ),
    Case(
        R.redis_has_namespace,
        {"RAY_REDIS_ADDRESS": "redis:6379", "RAY_external_storage_namespace": "prod"},
    ),
    Case(R.redis_has_namespace, {"RAY_REDIS_ADDRESS": "redis:6379"}, role=Role.WORKER),
]


@pytest.fixture
def context(
    facts: HostFacts, private_paths: dict[str, str], tmp_path: Path
) -> Callable[[Case], RuleContext]:
    """The parsed settings of a case, every value valid, no rule run yet."""
    (tmp_path / "a-file").write_text("not a directory, not executable\n")

    def _context(case: Case) -> RuleContext:
        env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in case.env.items()}
        ctx = parse_settings(
            {**private_paths, **env}, role=case.role, facts=replace(facts, **case.facts)
        )
        assert ctx.errors == [], f"the case's values should parse: {ctx.errors}"
        return ctx

    return _context


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case: Case, context: Callable[[Case], RuleContext], tmp_path: Path) -> None:
    ctx = context(case)
    case.rule(ctx)
    got = [(e.variable, e.value, e.problem) for e in ctx.errors]
    assert len(got) == len(case.errors), f"{case.rule.__name__} reported {got}"
    for error, (variable, value, problem) in zip(ctx.errors, case.errors, strict=True):
        value, problem = (text.replace("{tmp}", str(tmp_path)) for text in (value, problem))
        assert (error.variable, error.value) == (variable, value), str(error)
        assert problem in error.problem, str(error)
        # What the user reads names what is allowed.
        assert "allowed:" in error.problem, str(error)


def test_every_rule_is_registered_once_and_has_a_refused_and_a_passing_case() -> None:
    defined = {
        fn
        for module in (R.ports, R.node, R.haproxy, R.paths, R.gcs)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__
        and not name.startswith("_")
        and list(inspect.signature(fn).parameters) == ["ctx"]
    }
    assert len(RULES) == len(set(RULES)), "a rule is listed twice"
    assert defined == set(RULES), f"not in RULES: {defined - set(RULES)}"
    for rule in RULES:
        verdicts = {bool(c.errors) for c in CASES if c.rule is rule}
        assert verdicts == {True, False}, f"{rule.__name__}: cases {verdicts}"


def test_rules_report_every_problem_at_once(
    context: Callable[[Case], RuleContext],
) -> None:
    """One bad combination per rule module, all reported together in RULES order."""
    ctx = context(
        Case(
            R.check_rules,
            {
                "RSH_DASHBOARD_PORT": "8000",
                "RSH_RAY_START_ARGS": "--min-worker-port=1",
                "RAY_SERVE_HAPROXY_LOG_TARGET": "127.0.0.1:5140",
                "RSH_SERVE_CONFIG": "/nonexistent/serve.yaml",
                "RAY_REDIS_ADDRESS": "redis:6379",
            },
            role=Role.HEAD,
        )
    )
    R.check_rules(ctx)
    assert [e.variable for e in ctx.errors] == [
        "RSH_DASHBOARD_PORT",
        "RSH_RAY_START_ARGS",
        "RAY_SERVE_HAPROXY_LOG_TARGET",
        "RSH_SERVE_CONFIG",
        "RAY_external_storage_namespace",
    ], [str(e) for e in ctx.errors]
    assert all(isinstance(e, SettingError) for e in ctx.errors)
