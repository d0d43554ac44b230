"""h2load's output -> one measurement in wrk's shape (see wrk_output.py).

The benchmark runs h2load through H2LOAD_SCRIPT, which prints h2load's --log-file (one line
per request: start time, status, duration in microseconds) after its report, behind a mark.
"""

from __future__ import annotations

import re
from typing import Any

from .apps import GRPC_REPLY
from .shell import BenchError
from .stats import latency_summary

LOG_MARK = "H2LOAD_LOG"
# Runs h2load ("$@" after the log's path $1), then prints its --log-file after its report.
H2LOAD_SCRIPT = f'log=$1; shift; "$@"; rc=$?; echo {LOG_MARK}; cat "$log"; rm -f "$log"; exit $rc'


def parse_h2load(out: str, duration: float) -> dict[str, Any]:
    """Counts from h2load's report and the request times of its log (after the mark)."""
    report, mark, log_text = out.partition(f"\n{LOG_MARK}\n")
    req = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout",
        report,
    )
    codes = re.search(r"status codes: (\d+) 2xx", report)
    data = re.search(r"^traffic: .*\((\d+)\) data", report, re.M)
    if not (mark and req and codes and data):
        raise BenchError(f"unexpected h2load output:\n{out[-2000:]}")
    done, errored, timeout = int(req.group(3)), int(req.group(6)), int(req.group(7))
    times = [int(f[2]) for f in (ln.split("\t") for ln in log_text.splitlines()) if len(f) == 3]
    return {
        "duration_s": duration,
        "requests": done,
        "responses": done - errored,
        "status_2xx": int(codes.group(1)),
        "data_bytes": int(data.group(1)),
        "errored": errored,
        "timeout": timeout,
        "times_us": times,
    }


def merge_h2load(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """wrk's result shape (see report.lua) from one or more h2load runs.

    non_2xx counts calls that were not OK: HTTP status not 2xx, or 2xx without the reply
    message (so grpc-status != 0). Socket errors: h2load's errored streams (read), of
    which timeouts (connection inactive for --timeout) apart."""

    def total(key: str) -> int:
        return sum(int(p[key]) for p in parts)

    done, responses, ok_http = total("requests"), total("responses"), total("status_2xx")
    replies = total("data_bytes") // len(GRPC_REPLY)
    times = sorted(t for p in parts for t in p["times_us"])
    if responses and not times:
        raise BenchError("h2load logged no request times")
    duration = max(p["duration_s"] for p in parts)
    return {
        "duration_s": duration,
        "requests": done,
        "responses": responses,
        "requests_per_s": sum(p["requests"] / p["duration_s"] for p in parts),
        "non_2xx": (responses - ok_http) + max(0, ok_http - replies),
        "status_counts": {"2xx": ok_http, "other": responses - ok_http},
        "grpc_replies": replies,
        "errors": {
            "connect": 0,
            "read": total("errored") - total("timeout"),
            "write": 0,
            "timeout": total("timeout"),
        },
        "latency_us": latency_summary(times),
    }
