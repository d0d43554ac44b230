"""What TLS costs at the entry: `python -m benchmarks.tls_cost` (run it under the Docker lock).

A focused measurement, beside the full benchmark: one entry container (the image's `entry`
command, RSH_ENTRY_PLAIN_HTTP=serve so the same HAProxy serves plain HTTP on 8000 and HTTPS on
8443) in front of one stand-in node, an HAProxy that answers every request itself (so the
numbers are the entry's, not a replica's). Certificates: a local CA and an ECDSA P-256 server
certificate (ray_serve_haproxy.tls_local_ca). Four modes, each for --seconds with --threads
Python clients (http.client) on 127.0.0.1:
  plain/keep-alive, tls/keep-alive   one connection per thread, reused
  plain/new-conn,   tls/new-conn     a new TCP (and TLS: full handshake) connection per request
For each: requests, requests/s, client latency p50/p99, and the entry container's CPU per
request (its cgroup's CPU time over the window, from the Docker API). TLS's cost is the
difference to plain in the same connection mode. The client is Python on the same 2 cores, so
absolute latencies include the client's own time; the differences and the entry's CPU per
request are the numbers to read. Writes benchmarks/results/tls-cost.json and prints a table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
from ray_serve_haproxy.tls_local_ca import ensure_local_ca

IMAGE = os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest")
RESULTS = Path(__file__).resolve().parent / "results" / "tls-cost.json"
NODE_CONFIG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend node
    bind :8000
    acl routes path /-/routes
    http-request return status 200 content-type application/json string '{"/hello":"hi"}' if routes
    http-request return status 200 content-type text/plain string ok if { path /-/healthz }
    http-request return status 200 content-type application/json string '{"app":"hello"}'
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_ns(container: Any) -> int:
    stats = container.stats(stream=False, one_shot=True)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])


def run_mode(
    port: int, tls: ssl.SSLContext | None, keep_alive: bool, threads: int, seconds: float
) -> list[float]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def connect() -> http.client.HTTPConnection:
        if tls is None:
            return http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        return http.client.HTTPSConnection("localhost", port, timeout=10, context=tls)

    def worker() -> None:
        mine: list[float] = []
        conn = connect()
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                if not keep_alive:
                    conn.close()
                    conn = connect()
                conn.request("GET", "/hello")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(str(response.status))
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = connect()
                continue
            mine.append(time.perf_counter() - start)
        conn.close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[:3]}")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    client = docker.from_env()
    tag = f"rsh-tlsbench-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="rsh-tlsbench-"))
    work.chmod(0o755)
    ensure_local_ca(work / "tls")
    for path in [work / "tls", *(work / "tls").iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (work / "node.cfg").write_text(NODE_CONFIG)
    (work / "node.cfg").chmod(0o644)
    network = client.networks.create(tag)
    containers = []
    try:
        node = client.containers.run(
            IMAGE,
            entrypoint=["/usr/local/bin/haproxy"],
            command=["-db", "-f", "/w/node.cfg"],
            name=f"{tag}-node",
            network=tag,
            detach=True,
            volumes={str(work): {"bind": "/w", "mode": "ro"}},
        )
        containers.append(node)
        plain_port, tls_port = free_port(), free_port()
        entry = client.containers.run(
            IMAGE,
            command=["entry"],
            name=f"{tag}-entry",
            network=tag,
            detach=True,
            environment={
                "RSH_ENTRY_NODES": f"{tag}-node",
                "RSH_GRPC_PORT": "0",
                "RAY_SERVE_HAPROXY_MAXCONN": "4096",
                "RSH_ENTRY_TLS_CERT": "/w/tls/server.pem",
                "RSH_ENTRY_TLS_ISSUER_CA": "/w/tls/ca.crt",
                "RSH_ENTRY_PLAIN_HTTP": "serve",
            },
            volumes={str(work): {"bind": "/w", "mode": "ro"}},
            ports={"8000/tcp": ("127.0.0.1", plain_port), "8443/tcp": ("127.0.0.1", tls_port)},
        )
        containers.append(entry)
        context = ssl.create_default_context(cafile=str(work / "tls" / "ca.crt"))
        deadline = time.monotonic() + 90
        while True:
            try:
                run_mode(tls_port, context, True, 1, 0.2)
                run_mode(plain_port, None, True, 1, 0.2)
                break
            except (RuntimeError, OSError) as exc:
                if time.monotonic() > deadline:
                    logs = entry.logs().decode()[-2000:]
                    raise SystemExit(f"entry not serving: {exc}\n{logs}") from exc
                time.sleep(0.5)
        version = entry.exec_run(["/usr/local/bin/haproxy", "-v"]).output.decode().split("\n")[0]
        rows: dict[str, dict[str, float]] = {}
        for name, port, tls, keep in (
            ("plain/keep-alive", plain_port, None, True),
            ("tls/keep-alive", tls_port, context, True),
            ("plain/new-conn", plain_port, None, False),
            ("tls/new-conn", tls_port, context, False),
        ):
            run_mode(port, tls, keep, args.threads, 1.0)  # warm-up
            before, start = cpu_ns(entry), time.monotonic()
            latencies = run_mode(port, tls, keep, args.threads, args.seconds)
            elapsed, cpu = time.monotonic() - start, cpu_ns(entry) - before
            rows[name] = {
                "requests": len(latencies),
                "rps": round(len(latencies) / elapsed, 1),
                "p50_ms": round(percentile(latencies, 0.5), 3),
                "p99_ms": round(percentile(latencies, 0.99), 3),
                "entry_cpu_us_per_request": round(cpu / 1000 / max(1, len(latencies)), 1),
            }
        added = {
            mode: {
                "p50_ms": round(rows[f"tls/{mode}"]["p50_ms"] - rows[f"plain/{mode}"]["p50_ms"], 3),
                "entry_cpu_us_per_request": round(
                    rows[f"tls/{mode}"]["entry_cpu_us_per_request"]
                    - rows[f"plain/{mode}"]["entry_cpu_us_per_request"],
                    1,
                ),
            }
            for mode in ("keep-alive", "new-conn")
        }
        result = {
            "what": "entry TLS cost: plain HTTP vs HTTPS through the same entry HAProxy",
            "image": IMAGE,
            "haproxy": version,
            "certificate": "ECDSA P-256, TLS 1.3 (TLS_AES_128_GCM_SHA256 or as negotiated)",
            "threads": args.threads,
            "seconds_per_mode": args.seconds,
            "cpus": os.cpu_count(),
            "modes": rows,
            "tls_added": added,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{'mode':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'entry CPU us/req':>18}")
        for name, row in rows.items():
            print(
                f"{name:<18}{row['rps']:>10}{row['p50_ms']:>10}{row['p99_ms']:>10}"
                f"{row['entry_cpu_us_per_request']:>18}"
            )
        for mode, row in added.items():
            print(
                f"TLS adds ({mode}): p50 {row['p50_ms']} ms, entry CPU "
                f"{row['entry_cpu_us_per_request']} us/request"
            )
        print(f"written: {args.out}")
        return 0
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
