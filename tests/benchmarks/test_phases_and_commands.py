"""Which clusters a run brings up and what each measures; the load generators' command lines."""

from __future__ import annotations

import re

import pytest

from benchmarks.load_settings import LoadSettings
from benchmarks.paths import PATHS, target_for
from benchmarks.phases import LogMode, build_phases, parse_log_modes
from benchmarks.wrk import wrk_command

pytestmark = pytest.mark.unit

INFO = {"replicas": ["10.0.0.4:30000", "10.0.0.5:30001"], "grpc_replicas": ["10.0.0.4:40000"]}


def test_log_modes() -> None:
    assert parse_log_modes("all:1, errors:1,off:0,") == [
        LogMode("all", True),
        LogMode("errors", True),
        LogMode("off", False),
    ]
    assert LogMode("off", False).env == {
        "RSH_ACCESS_LOG": "off",
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
    }
    for bad in ("all", "loud:1", "all:2"):
        with pytest.raises(ValueError, match=re.escape("want <all|errors|off>:<0|1>")):
            parse_log_modes(bad)


def test_phases_of_a_full_run() -> None:
    phases = build_phases(
        ["haproxy", "python", "variant", "logmodes"],
        levels=[1, 64],
        grpc_levels=[64],
        variant_nbthread=4,
        log_modes=parse_log_modes("all:1,off:0"),
        log_mode_levels=[64],
        extra_env={"X": "1", "RAY_SERVE_ENABLE_HA_PROXY": "ignored"},
    )
    names = [p.name for p in phases]
    assert names == [
        "haproxy",
        "python_proxy",
        "haproxy_nbthread4",
        "haproxy_log_all_metrics_1",
        "haproxy_log_off_metrics_0",
    ]
    haproxy, python, variant, log_all, _ = phases
    assert haproxy.paths == ["haproxy", "direct", "grpc_haproxy", "grpc_direct"]
    assert haproxy.grpc and not variant.grpc
    assert python.env == {"X": "1", "RAY_SERVE_ENABLE_HA_PROXY": "0"}  # the phase's own wins
    assert [variant.result_key(p) for p in variant.paths] == [
        "haproxy_nbthread4",
        "haproxy_nbthread4_direct",
    ]
    assert log_all.levels == [64] and log_all.paths == ["haproxy"]
    assert log_all.result_key("haproxy") == "haproxy_log_all_metrics_1"
    assert log_all.env["RSH_ACCESS_LOG"] == "all"
    # Every path has an entry node: the service whose CPU per request is the score.
    assert {PATHS[p].entry for p in haproxy.paths} == {"head", "worker"}


def test_wrk_spreads_over_replicas_and_never_has_more_threads_than_connections() -> None:
    settings = LoadSettings(threads=2, timeout_s=5)
    direct = target_for(PATHS["direct"], INFO)
    cmd, env = wrk_command(direct, 64, 10, settings)
    assert cmd[:4] == ["wrk", "-t2", "-c64", "-d10s"] and cmd[-1] == "http://10.0.0.4:30000/bench"
    assert env == {"WRK_TARGETS": "10.0.0.4:30000,10.0.0.5:30001"}
    cmd, env = wrk_command(direct, 1, 10, settings)  # one connection: one replica
    assert cmd[1:3] == ["-t1", "-c1"] and env == {"WRK_TARGETS": "10.0.0.4:30000"}
    haproxy = target_for(PATHS["haproxy"], INFO)
    cmd, env = wrk_command(haproxy, 1, 8, LoadSettings(threads=4, timeout_s=2.5))
    assert cmd[1:5] == ["-t1", "-c1", "-d8s", "--timeout=2.5s"] and env == {}
    assert cmd[-1] == "http://head:8000/bench"
    grpc = target_for(PATHS["grpc_direct"], INFO)
    assert grpc.grpc and grpc.spread == ["10.0.0.4:40000"]
