"""Rules between settings, each a small function of a `RuleContext`, run in `RULES` order.

A value that failed to parse is already reported: every rule skips it (`ctx.valid`). Every rule
runs, so the user sees all problems at once. To add a rule, write a function in the module of
its topic (ports, node, haproxy, paths, gcs) that calls `ctx.error(field, problem)` with a
problem ending in "allowed: ...", add it to `RULES`, and test its error and its passing case
in tests/unit/test_settings_rules.py.
"""

from __future__ import annotations

from .context import INVALID, Role, Rule, RuleContext, SettingError, Source, render
from .gcs import (
    one_fault_tolerant_storage,
    redis_has_namespace,
    redis_password_needs_address,
    rocksdb_has_writable_path,
    storage_path_only_with_rocksdb,
)
from .haproxy import (
    haproxy_binary_found,
    hard_stop_covers_server_timeout,
    log_target_local_port,
    log_target_matches_syslog_port,
    maxconn_fits_open_files,
)
from .node import (
    entry_has_nodes,
    node_ip_is_local,
    ray_start_args_not_owned,
    worker_has_head_address,
)
from .paths import directories_creatable, serve_config_readable, socket_paths_fit
from .ports import (
    FALLBACK_PROXY_PORTS,
    fixed_ports_outside_replica_ranges,
    fixed_ports_outside_worker_range,
    ports_clear_of_fallback_proxy,
    replica_ranges_disjoint,
    replica_ranges_ordered,
    tcp_ports_distinct,
    worker_range_clear_of_replica_ranges,
    worker_range_ordered,
)

__all__ = [
    "FALLBACK_PROXY_PORTS",
    "INVALID",
    "RULES",
    "Role",
    "Rule",
    "RuleContext",
    "SettingError",
    "Source",
    "check_rules",
    "log_target_local_port",
    "render",
]

# The order of the errors the user sees.
RULES: tuple[Rule, ...] = (
    replica_ranges_ordered,
    replica_ranges_disjoint,
    fixed_ports_outside_replica_ranges,
    tcp_ports_distinct,
    worker_range_ordered,
    worker_range_clear_of_replica_ranges,
    fixed_ports_outside_worker_range,
    ray_start_args_not_owned,
    node_ip_is_local,
    ports_clear_of_fallback_proxy,
    log_target_matches_syslog_port,
    hard_stop_covers_server_timeout,
    maxconn_fits_open_files,
    socket_paths_fit,
    directories_creatable,
    haproxy_binary_found,
    serve_config_readable,
    worker_has_head_address,
    entry_has_nodes,
    one_fault_tolerant_storage,
    storage_path_only_with_rocksdb,
    redis_password_needs_address,
    rocksdb_has_writable_path,
    redis_has_namespace,
)


def check_rules(ctx: RuleContext) -> None:
    """Run every rule; their errors land in `ctx.errors`."""
    for rule in RULES:
        rule(ctx)
