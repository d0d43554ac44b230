"""wrk's output -> one measurement. benchmarks/loadgen/report.lua prints it as a JSON line
(`WRK_JSON {...}`) after wrk's own report: throughput, latency percentiles (microseconds),
socket errors and responses by status."""

from __future__ import annotations

import json
from typing import Any

from .shell import BenchError

PREFIX = "WRK_JSON "
REQUIRED = ("requests", "responses", "requests_per_s", "non_2xx", "errors", "latency_us")


def parse_wrk(out: str, concurrency: int) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith(PREFIX):
            try:
                result: dict[str, Any] = json.loads(line[len(PREFIX) :])
            except json.JSONDecodeError as exc:
                raise BenchError(
                    f"wrk's {PREFIX.strip()} line is not JSON ({exc}): {line}"
                ) from None
            missing = [k for k in REQUIRED if k not in result]
            if missing:
                raise BenchError(f"wrk's {PREFIX.strip()} line lacks {missing}: {line}")
            result["concurrency"] = concurrency
            return result
    raise BenchError(f"wrk printed no {PREFIX.strip()} line:\n{out[-2000:]}")
