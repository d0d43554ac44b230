"""Percentiles, medians over rounds, errors."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.stats import agg, error_total, latency_summary, ratio, summarize

pytestmark = pytest.mark.unit


def test_percentiles_are_nearest_rank() -> None:
    s = latency_summary(list(range(1, 101)))  # 1..100 us
    assert (s["min"], s["max"], s["p50"], s["p90"], s["p99"], s["p99_9"]) == (
        1,
        100,
        50,
        90,
        99,
        100,
    )
    assert s["mean"] == 50.5
    assert latency_summary([7]) == {**dict.fromkeys(s, 7), "stdev": 0.0, "mean": 7}
    assert set(latency_summary([])) == set(s) and latency_summary([])["p99"] == 0


def test_median_min_max() -> None:
    assert agg([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert agg([1.0, 2.0]) == {"median": 1.5, "min": 1.0, "max": 2.0}
    assert agg([]) is None
    assert ratio(1.0, 4.0) == 0.25 and ratio(None, 1.0) is None and ratio(1.0, 0) is None


def _round(rps: float, p99_us: int, non_2xx: int = 0, timeout: int = 0) -> dict[str, Any]:
    return {
        "requests": int(rps * 10),
        "responses": int(rps * 10),
        "requests_per_s": rps,
        "non_2xx": non_2xx,
        "errors": {"connect": 0, "read": 1, "write": 0, "timeout": timeout},
        "latency_us": {"p50": p99_us // 10, "p90": p99_us // 2, "p99": p99_us},
    }


def test_summary_over_rounds_counts_every_error() -> None:
    cell = {
        "rounds": [_round(100, 9000), _round(300, 3000, non_2xx=2), _round(200, 6000, timeout=4)],
        "warmup": _round(50, 1000, non_2xx=1),
    }
    s = summarize(cell)
    assert s["requests_per_s"] == {"median": 200, "min": 100, "max": 300}
    assert s["p99_ms"] == {"median": 6.0, "min": 3.0, "max": 9.0}
    assert s["non_2xx"] == 2 and s["socket_errors"] == 3 + 4
    assert s["errors"]["timeout"] == 4
    assert (s["warmup_non_2xx"], s["warmup_socket_errors"]) == (1, 1)
    assert error_total({"64": {"summary": s}}) == 2 + 7 + 1 + 1
    assert error_total({}) is None
