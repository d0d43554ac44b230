"""One measurement of a target at a concurrency: wrk for HTTP, h2load for gRPC, both in the
loadgen container on the compose network (never on the host, never beyond the project)."""

from __future__ import annotations

from typing import Any

from .h2load import h2load
from .load_settings import LoadSettings
from .paths import Target
from .stats import socket_errors
from .wrk import wrk


def measure(
    loadgen: str, target: Target, conns: int, duration: float, settings: LoadSettings
) -> dict[str, Any]:
    run_one = h2load if target.grpc else wrk
    return run_one(loadgen, target, conns, duration, settings)


def short(r: dict[str, Any]) -> str:
    lat = r["latency_us"]
    return (
        f"{r['requests_per_s']:8.0f} req/s  p50 {lat['p50'] / 1000:7.2f} ms  "
        f"p99 {lat['p99'] / 1000:8.2f} ms  non-2xx {r['non_2xx']}  sock-err {socket_errors(r)}"
    )
