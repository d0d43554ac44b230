"""wrk's output as the loadgen container prints it (report.lua's WRK_JSON line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.shell import BenchError
from benchmarks.wrk_output import parse_wrk

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"


def test_one_connection_through_haproxy() -> None:
    r = parse_wrk((DATA / "wrk_c1_haproxy.txt").read_text(), concurrency=1)
    assert r["concurrency"] == 1
    assert r["requests"] == r["responses"] == 3018
    assert r["requests_per_s"] == pytest.approx(1004.839)
    assert r["non_2xx"] == 0 and r["status_counts"] == {"200": 3018}
    assert r["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status_ge_400": 0}
    lat = r["latency_us"]
    assert (lat["p50"], lat["p90"], lat["p99"]) == (797, 2068, 8523)
    assert lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
    # wrk's own report says the same.
    assert "Requests/sec:   1004.84" in (DATA / "wrk_c1_haproxy.txt").read_text()


def test_direct_run_spread_over_both_replicas() -> None:
    r = parse_wrk((DATA / "wrk_c64_direct.txt").read_text(), concurrency=64)
    assert r["threads"] == 2
    assert r["thread_targets"] == ["172.19.0.4:30001", "172.19.0.5:30001"]
    assert r["latency_us"]["p99"] == 398083


def test_non_2xx_are_counted_exactly() -> None:
    r = parse_wrk((DATA / "wrk_c256_404.txt").read_text(), concurrency=256)
    assert r["non_2xx"] == r["responses"] == 37840
    assert r["status_counts"] == {"404": 37840}


def test_output_without_the_json_line_fails_clearly() -> None:
    with pytest.raises(BenchError, match="no WRK_JSON line"):
        parse_wrk((DATA / "wrk_bad_option.txt").read_text(), concurrency=64)


def test_a_damaged_json_line_fails_clearly() -> None:
    with pytest.raises(BenchError, match="not JSON"):
        parse_wrk('WRK_JSON {"requests": 1,', concurrency=1)
    with pytest.raises(BenchError, match="lacks"):
        parse_wrk('WRK_JSON {"requests": 1}', concurrency=1)
