"""HTTP load with wrk (benchmarks/loadgen/report.lua: per-replica threads, JSON summary)."""

from __future__ import annotations

from typing import Any

from .load_settings import LoadSettings
from .paths import Target
from .shell import dexec
from .wrk_output import parse_wrk

LOADGEN_SCRIPT = "/opt/loadgen/report.lua"


def wrk_command(
    target: Target, conns: int, duration: float, settings: LoadSettings
) -> tuple[list[str], dict[str, str]]:
    """wrk's argv and environment. On a direct path the threads (so the connections) are
    shared equally by the replicas, or by the first `conns` of them at low concurrency."""
    threads = settings.threads
    spread = target.spread[:conns]
    if spread:
        n = len(spread)
        threads = max(n, -(-threads // n) * n)
    threads = min(threads, conns)  # wrk wants at least one connection per thread
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{duration:g}s",
        f"--timeout={settings.timeout_s:g}s",
        "--latency",
        "-s",
        LOADGEN_SCRIPT,
        target.url,  # on a direct path the first replica's; report.lua connects per thread
    ]
    return cmd, ({"WRK_TARGETS": ",".join(spread)} if spread else {})


def wrk(
    loadgen: str, target: Target, conns: int, duration: float, settings: LoadSettings
) -> dict[str, Any]:
    cmd, env = wrk_command(target, conns, duration, settings)
    return parse_wrk(dexec(loadgen, cmd, env=env, timeout=duration + 60), conns)
