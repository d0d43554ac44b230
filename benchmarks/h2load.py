"""gRPC load with h2load: unary calls, one in flight per HTTP/2 connection (as wrk's)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .apps import GRPC_HEADERS, GRPC_METHOD, GRPC_REQUEST_FILE
from .h2load_output import H2LOAD_SCRIPT, merge_h2load, parse_h2load
from .load_settings import LoadSettings
from .paths import Target
from .shell import dexec


def h2load(
    loadgen: str, target: Target, conns: int, duration: float, settings: LoadSettings
) -> dict[str, Any]:
    """`conns` HTTP/2 connections, one call in flight on each. h2load sends to one address per
    run, so the direct path runs one h2load per replica at once, with an equal share of
    connections and threads."""
    addrs = target.spread or [target.url.split("/")[2]]
    n = len(addrs)
    shares = [conns // n + (i < conns % n) for i in range(n)]
    threads = max(1, settings.threads // n)
    jobs = [
        (f"http://{a}{GRPC_METHOD}", c, min(threads, c), f"/tmp/h2load-{i}.log")
        for i, (a, c) in enumerate(zip(addrs, shares, strict=True))
        if c
    ]

    def one(job: tuple[str, int, int, str]) -> dict[str, Any]:
        url, c, t, logfile = job
        cmd = ["h2load", f"-t{t}", f"-c{c}", "-m1", f"-D{duration:g}", f"-N{settings.timeout_s:g}s"]
        cmd += ["-d", GRPC_REQUEST_FILE, f"--log-file={logfile}"]
        for h in GRPC_HEADERS:
            cmd += ["-H", h]
        out = dexec(
            loadgen, ["sh", "-c", H2LOAD_SCRIPT, "sh", logfile, *cmd, url], timeout=duration + 60
        )
        return parse_h2load(out, duration)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        parts = list(pool.map(one, jobs))
    result = merge_h2load(parts)
    result.update(concurrency=conns, threads=sum(j[2] for j in jobs))
    result["thread_targets"] = [j[0].split("/")[2] for j in jobs] if target.spread else []
    return result
