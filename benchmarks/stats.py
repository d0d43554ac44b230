"""Statistics of the measurements: latency percentiles, medians over rounds, ratios, errors."""

from __future__ import annotations

import math
import statistics
from typing import Any

LATENCY_KEYS = ("min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99_9")


def latency_summary(times: list[int]) -> dict[str, float]:
    """Min, mean, stdev, max and percentiles (nearest rank) of sorted times."""
    if not times:
        return dict.fromkeys(LATENCY_KEYS, 0)

    def pct(p: float) -> int:
        return times[max(0, math.ceil(p / 100 * len(times)) - 1)]

    return {
        "min": times[0],
        "mean": round(statistics.fmean(times), 1),
        "stdev": round(statistics.pstdev(times), 1),
        "max": times[-1],
        **{f"p{str(p).replace('.', '_')}": pct(p) for p in (50, 75, 90, 99, 99.9)},
    }


def agg(values: list[float]) -> dict[str, float] | None:
    """Median, min and max of the rounds' values (None without any)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def socket_errors(r: dict[str, Any]) -> int:
    e = r["errors"]
    return int(e["connect"] + e["read"] + e["write"] + e["timeout"])


def summarize(cell: dict[str, Any]) -> dict[str, Any]:
    """One (path, concurrency): throughput and latency over its rounds, errors of all."""
    rounds = cell["rounds"]
    answered = [r for r in rounds if r["responses"] > 0]
    s: dict[str, Any] = {
        "requests_per_s": agg([r["requests_per_s"] for r in rounds]),
        "rounds": len(rounds),
        "requests": sum(r["requests"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": sum(socket_errors(r) for r in rounds),
        "errors": {
            k: sum(r["errors"][k] for r in rounds) for k in ("connect", "read", "write", "timeout")
        },
    }
    for p in ("p50", "p90", "p99"):
        s[f"{p}_ms"] = agg([r["latency_us"][p] / 1000 for r in answered])
    w = cell.get("warmup")
    if w:
        s["warmup_non_2xx"] = w["non_2xx"]
        s["warmup_socket_errors"] = socket_errors(w)
    return s


def med(summary: dict[str, Any] | None, key: str) -> float | None:
    if not summary or not summary.get(key):
        return None
    return float(summary[key]["median"])


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def error_total(cells: dict[str, Any]) -> int | None:
    """Non-2xx (not-OK calls for gRPC) + socket errors of every level, warm-ups included."""
    if not cells:
        return None
    return sum(
        int(
            c["summary"]["non_2xx"]
            + c["summary"]["socket_errors"]
            + c["summary"].get("warmup_non_2xx", 0)
            + c["summary"].get("warmup_socket_errors", 0)
        )
        for c in cells.values()
    )
