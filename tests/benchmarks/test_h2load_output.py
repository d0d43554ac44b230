"""h2load's report plus its request log, as the benchmark runs it (H2LOAD_SCRIPT)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.apps import GRPC_REPLY
from benchmarks.h2load_output import merge_h2load, parse_h2load
from benchmarks.shell import BenchError

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"


def test_successful_calls() -> None:
    part = parse_h2load((DATA / "h2load_c2_haproxy.txt").read_text(), duration=1)
    assert part["requests"] == part["responses"] == part["status_2xx"]
    assert part["requests"] == len(part["times_us"]) > 500
    assert part["data_bytes"] == part["requests"] * len(GRPC_REPLY)  # one reply per call
    merged = merge_h2load([part])
    assert merged["non_2xx"] == 0 and merged["grpc_replies"] == part["requests"]
    assert merged["requests_per_s"] == pytest.approx(part["requests"])
    lat = merged["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]


def test_calls_answered_without_a_reply_are_not_ok() -> None:
    # application: nope -> HAProxy answers HTTP 200, grpc-status 5, no message.
    part = parse_h2load((DATA / "h2load_n200_unknown_app.txt").read_text(), duration=1)
    assert part["requests"] == part["status_2xx"] == 200 and part["data_bytes"] == 0
    merged = merge_h2load([part])
    assert merged["non_2xx"] == 200 and merged["grpc_replies"] == 0


def test_two_replicas_merge_into_one_measurement() -> None:
    a = parse_h2load((DATA / "h2load_c2_haproxy.txt").read_text(), duration=1)
    b = parse_h2load((DATA / "h2load_n200_unknown_app.txt").read_text(), duration=1)
    merged = merge_h2load([a, b])
    assert merged["requests"] == a["requests"] + 200
    assert merged["non_2xx"] == 200
    assert merged["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    times = sorted(a["times_us"] + b["times_us"])
    assert merged["latency_us"]["max"] == times[-1] and merged["latency_us"]["min"] == times[0]


def test_output_without_the_log_mark_fails_clearly() -> None:
    report = (DATA / "h2load_c2_haproxy.txt").read_text().split("\nH2LOAD_LOG\n")[0]
    with pytest.raises(BenchError, match="unexpected h2load output"):
        parse_h2load(report, duration=1)
