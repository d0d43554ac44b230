#!/usr/bin/env python3
"""Side-by-side benchmark of the compose cluster (entry point: scripts/benchmark.sh).

Three paths to the same HTTP app (benchmarks/app: two replicas, one on each worker):

  haproxy       HAProxy mode (the image's default), through the head's :8000
  python_proxy  the same cluster restarted with RAY_SERVE_ENABLE_HA_PROXY=0, Ray's
                Python proxy on the head's :8000
  direct        the replicas' own direct-ingress ports (30000+ on the workers), wrk's
                threads spread over the replicas: the floor no proxy can beat

plus a variant: HAProxy mode with RAY_SERVE_HAPROXY_NBTHREAD=4 against the runtime's
derived default. The same three paths for gRPC (app bench-grpc, unary
rsh.demo.Greeter/SayHello, at --grpc-levels only): HAProxy's gRPC frontend and the
Python proxy on the head's :9000, and the replicas' gRPC ports (40000+). Load comes from
wrk (HTTP) and h2load (gRPC) in their own container (service `loadgen` of
benchmarks/compose.bench.yaml) on the compose network; it is sent only to the
project's own containers. Every (path, concurrency) gets a warm-up and several
rounds; medians are quoted with min and max. Paths measured on the same cluster
are interleaved round by round, so drift hits them alike.

Writes <out>/<name>.json, <name>.md and <name>.png (default benchmarks/results/latest.*).
`--render-only FILE.json` redraws the table and chart from an earlier result.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_COMPOSE = REPO / "benchmarks" / "compose.bench.yaml"
LOADGEN_SCRIPT = "/opt/loadgen/report.lua"
APP_NAME = "bench"
DEPLOYMENT = "Bench"
ROUTE = "/bench"
REPLICAS = 2
BACKEND = f"http-{APP_NAME}"
# gRPC: benchmarks/app/bench_grpc_app.py, called with h2load. h2load counts HTTP statuses
# only (a failed call is HTTP 200 with grpc-status != 0 in the trailers): a call counts as
# OK when its reply message arrived, i.e. DATA bytes received / len(GRPC_REPLY).
GRPC_APP = "bench-grpc"
GRPC_DEPLOYMENT = "BenchGrpc"
GRPC_BACKEND = f"grpc-{GRPC_APP}"
GRPC_PORT = 9000
GRPC_METHOD = "/rsh.demo.Greeter/SayHello"
GRPC_REQUEST_FILE = "/tmp/rshbench-hello.grpc"
GRPC_HEADERS = ["content-type: application/grpc", "te: trailers", f"application: {GRPC_APP}"]
APPS = {APP_NAME: DEPLOYMENT, GRPC_APP: GRPC_DEPLOYMENT}
TIMES, DASH, DIVIDE = "\u00d7", "\u2013", "\u00f7"

PATH_LABELS = {
    "haproxy": "HAProxy mode (:8000)",
    "python_proxy": "Python proxy (:8000)",
    "direct": "Direct to replicas (30000+)",
    "haproxy_nbthread": "HAProxy mode, NBTHREAD={n}",
    "grpc_haproxy": "gRPC: HAProxy mode (:9000)",
    "grpc_python_proxy": "gRPC: Python proxy (:9000)",
    "grpc_direct": "gRPC: direct to replicas (40000+)",
}
GRPC_PATHS = ["grpc_haproxy", "grpc_python_proxy", "grpc_direct"]


def grpc_message(payload: bytes) -> bytes:
    """One length-prefixed gRPC message: not compressed, 4-byte big-endian length."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def proto_string(field_number: int, text: str) -> bytes:
    """A protobuf string field (wire type 2) shorter than 128 bytes."""
    data = text.encode()
    assert len(data) < 128
    return bytes([field_number << 3 | 2, len(data)]) + data


GRPC_REQUEST = grpc_message(proto_string(1, "bench"))  # HelloRequest{name: "bench"}
GRPC_REPLY = grpc_message(proto_string(1, "ok"))  # HelloReply{message: "ok"}


def log(msg: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[benchmark {stamp}] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


def run(
    cmd: list[str],
    *,
    check: bool = True,
    timeout: float | None = 120,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        raise BenchError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )
    return proc


# --------------------------------------------------------------------------- cluster


@dataclass
class Phase:
    """One cluster configuration: brought up, measured, torn down."""

    name: str
    env: dict[str, str]
    paths: list[str]
    haproxy: bool
    info: dict[str, Any] = field(default_factory=dict)


class Cluster:
    def __init__(self, project: str, image: str) -> None:
        self.project = project
        self.image = image
        self.override = Path(tempfile.mkdtemp(prefix="rshbench-")) / "phase.yaml"
        self.env = dict(os.environ, RSH_IMAGE=image)

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        cmd = ["docker", "compose", "-p", self.project, "--project-directory", str(REPO)]
        for f in (REPO / "compose.yaml", BENCH_COMPOSE, self.override):
            cmd += ["-f", str(f)]
        return run(cmd + list(args), timeout=timeout, check=check, env=self.env).stdout

    def up(self, phase: Phase, wait_timeout: int) -> None:
        # JSON is YAML: environment merged by key into compose.yaml's head and worker.
        svc = {"environment": phase.env}
        self.override.write_text(json.dumps({"services": {"head": svc, "worker": svc}}, indent=2))
        self.compose(
            "up", "-d", "--wait", "--wait-timeout", str(wait_timeout), timeout=wait_timeout + 120
        )

    def down(self) -> None:
        if not self.override.exists():
            self.override.write_text("{}\n")
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300, check=False)

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def head(self) -> str:
        ids = self.containers("head")
        if not ids:
            raise BenchError("no head container")
        return ids[0]

    def loadgen(self) -> str:
        ids = self.containers("loadgen")
        if not ids:
            raise BenchError("no loadgen container")
        return ids[0]


def dexec(
    container: str,
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    check: bool = True,
) -> str:
    args = ["docker", "exec"]
    for k, v in (env or {}).items():
        args += ["-e", f"{k}={v}"]
    return run([*args, container, *cmd], timeout=timeout, check=check).stdout


def http_code(loadgen: str, url: str) -> str:
    out = dexec(
        loadgen,
        ["curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", url],
        check=False,
        timeout=20,
    )
    return out.strip() or "000"


def haproxy_processes(container: str) -> list[str]:
    out = dexec(container, ["ps", "-eo", "args"], check=False)
    return [ln.strip() for ln in out.splitlines() if re.match(r"\S*haproxy\s", ln.strip() + " ")]


def haproxy_cfg(container: str) -> tuple[str, str]:
    """(path, text) of the HAProxy config the running haproxy was started with."""
    for args in haproxy_processes(container):
        m = re.search(r"\s-f\s+(\S+)", args)
        if m:
            return m.group(1), dexec(container, ["cat", m.group(1)])
    raise BenchError("no running haproxy with -f <config> in the head container")


def parse_cfg(text: str, backend: str) -> dict[str, Any]:
    servers: list[dict[str, str]] = []
    nbthread = None
    socket = None
    in_backend = False
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not line[0].isspace():
            in_backend = s == f"backend {backend}"
            continue
        words = s.split()
        if words[0] == "nbthread":
            nbthread = int(words[1])
        elif words[:2] == ["stats", "socket"]:
            socket = words[2]
        elif in_backend and words[0] == "server" and "backup" not in words:
            servers.append({"name": words[1], "address": words[2]})
    return {"servers": servers, "nbthread": nbthread, "socket": socket}


def haproxy_show(container: str, socket: str, command: str) -> str:
    cmd = ["docker", "exec", "-i", container, "socat", "-t", "2", "stdio", f"UNIX-CONNECT:{socket}"]
    return run(cmd, input_text=command + "\n", check=False, timeout=20).stdout


def serve_replicas_running(head: str, apps: dict[str, str]) -> tuple[bool, str]:
    """Whether every app (name: deployment) runs REPLICAS replicas, and what it found."""
    import yaml

    out = dexec(head, ["serve", "status"], check=False, timeout=60)
    try:
        doc = yaml.safe_load(out) or {}
        states = []
        for name, deployment in apps.items():
            app = (doc.get("applications") or {}).get(name) or {}
            dep = (app.get("deployments") or {}).get(deployment) or {}
            running = (dep.get("replica_states") or {}).get("RUNNING", 0)
            states.append((name, app.get("status"), running))
        ok = all(status == "RUNNING" and n == REPLICAS for _, status, n in states)
        return ok, ", ".join(f"app {a} {status}, {n} running" for a, status, n in states)
    except Exception as exc:  # any unparsable answer means "not yet"
        return False, f"serve status unreadable: {exc}: {out[-300:]}"


def grpc_probe(loadgen: str, address: str) -> str | None:
    """One unary call to address (host:port) with curl: None if it answered grpc-status 0
    in the trailers with the expected reply message, else what went wrong."""
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "-m", "5", "-o", "/dev/null", "-D", "-"]
    cmd += ["--data-binary", f"@{GRPC_REQUEST_FILE}", "-w", "size_download=%{size_download}\n"]
    for h in GRPC_HEADERS:
        cmd += ["-H", h]
    out = dexec(loadgen, [*cmd, f"http://{address}{GRPC_METHOD}"], check=False, timeout=20)
    status = re.search(r"(?im)^grpc-status:\s*(\d+)", out)
    size = re.search(r"size_download=(\d+)", out)
    if not re.match(r"HTTP/2 200\b", out) or not status or not size:
        return f"no gRPC answer: {' | '.join(out.strip().splitlines()[:6]) or 'nothing'}"
    if status.group(1) != "0" or int(size.group(1)) != len(GRPC_REPLY):
        message = re.search(r"(?im)^grpc-message:(.*)$", out)
        return (
            f"grpc-status {status.group(1)}, {size.group(1)}-byte reply"
            f" (want 0, {len(GRPC_REPLY)}): {message.group(1).strip() if message else ''}"
        )
    return None


def write_grpc_request(loadgen: str) -> None:
    """The request h2load and curl send (-d / --data-binary), into the loadgen container."""
    b64 = base64.b64encode(GRPC_REQUEST).decode()
    dexec(loadgen, ["sh", "-c", f"echo {b64} | base64 -d > {GRPC_REQUEST_FILE}"])


def wait_ready(cluster: Cluster, phase: Phase, timeout: float) -> None:
    """Until both apps run 2 replicas and every path of the phase answers: HTTP 200, and
    gRPC calls (when the phase measures gRPC) grpc-status 0."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            head, loadgen = cluster.head(), cluster.loadgen()
            apps = APPS if measures_grpc(phase) else {APP_NAME: DEPLOYMENT}
            ok, last = serve_replicas_running(head, apps)
            if ok:
                code = http_code(loadgen, f"http://head:8000{ROUTE}")
                last = f"head:8000{ROUTE} answered {code}"
                if code == "200":
                    ready = haproxy_ready if phase.haproxy else python_proxy_ready
                    not_yet = ready(head, loadgen, phase)
                    if not not_yet:
                        return
                    last = not_yet
        except BenchError as exc:
            if "HAProxy still runs" in str(exc):
                raise
            last = str(exc).splitlines()[0]
        if time.monotonic() > deadline:
            hint = ""
            if not phase.haproxy and "answered 000" in last:
                hint = (
                    " (connection refused from the compose network: the Python proxy must"
                    " listen on 0.0.0.0, see ENVIRONMENT.md)"
                )
            raise BenchError(f"phase {phase.name} not ready after {timeout:.0f}s: {last}{hint}")
        time.sleep(3)


def measures_grpc(phase: Phase) -> bool:
    return any(p in GRPC_PATHS for p in phase.paths)


def backend_servers(text: str, backend: str) -> tuple[list[str], bool]:
    """(addresses of the backend's servers, whether they are one per replica on distinct hosts)."""
    addrs = [s["address"] for s in parse_cfg(text, backend)["servers"]]
    hosts = {a.rsplit(":", 1)[0] for a in addrs}
    return addrs, len(addrs) == REPLICAS and len(hosts) == REPLICAS


def haproxy_ready(head: str, loadgen: str, phase: Phase) -> str | None:
    """None once HAProxy routes every path of the phase to both replicas, else why not."""
    path, text = haproxy_cfg(head)
    cfg = parse_cfg(text, BACKEND)
    addrs, spread = backend_servers(text, BACKEND)
    codes = [http_code(loadgen, f"http://{a}{ROUTE}") for a in addrs]
    if not spread or set(codes) != {"200"}:
        return f"backend {BACKEND}: {addrs} answered {codes}"
    if measures_grpc(phase):
        grpc_addrs, spread = backend_servers(text, GRPC_BACKEND)
        if not spread:
            return f"backend {GRPC_BACKEND}: servers {grpc_addrs}"
        failed = grpc_failures(loadgen, [f"head:{GRPC_PORT}", *grpc_addrs])
        if failed:
            return f"gRPC not answering yet: {failed}"
        phase.info["grpc_replicas"] = grpc_addrs
    phase.info.update(
        haproxy_cfg=path, nbthread=cfg["nbthread"], admin_socket=cfg["socket"], replicas=addrs
    )
    return None


def python_proxy_ready(head: str, loadgen: str, phase: Phase) -> str | None:
    procs = haproxy_processes(head)
    if procs:
        raise BenchError(f"HAProxy still runs in Python-proxy mode: {procs}")
    if measures_grpc(phase):
        failed = grpc_failures(loadgen, [f"head:{GRPC_PORT}"])
        if failed:
            return f"gRPC not answering yet: {failed}"
    phase.info["haproxy_processes_on_head"] = 0
    return None


def grpc_failures(loadgen: str, addresses: list[str]) -> dict[str, str]:
    """{address: what went wrong} of a probe call to each address; empty when all were OK."""
    write_grpc_request(loadgen)
    probes = {a: grpc_probe(loadgen, a) for a in addresses}
    return {a: why for a, why in probes.items() if why}


# ------------------------------------------------------------------------- machine


def other_activity(project: str) -> list[str]:
    out = run(
        ["docker", "ps", "--format", '{{.Names}}\t{{.Label "com.docker.compose.project"}}'],
        check=False,
    ).stdout
    others = [
        ln.split("\t")[0] for ln in out.splitlines() if ln and ln.split("\t")[1:] != [project]
    ]
    builds = run(["pgrep", "-f", "buildx bake"], check=False).stdout.split()
    if builds:
        others.append(f"buildx bake (pid {' '.join(builds)})")
    return others


def wait_for_quiet(project: str, max_wait: float) -> list[str]:
    """Two cores only: wait while other projects' containers or builds run."""
    deadline = time.monotonic() + max_wait
    others = other_activity(project)
    if others:
        log(f"waiting (up to {max_wait:.0f}s) for other work to finish: {', '.join(others)}")
    while others and time.monotonic() < deadline:
        time.sleep(10)
        others = other_activity(project)
    if others:
        log(f"WARNING: measuring beside other work, numbers are contended: {', '.join(others)}")
    return others


def machine_info(image: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem_kb = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    labels_raw = run(
        ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image], check=False
    ).stdout
    try:
        labels = json.loads(labels_raw) or {}
    except json.JSONDecodeError:
        labels = {}
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else "unknown",
        "memory_gib": round(int(mem_kb.group(1)) / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "docker_server": run(
            ["docker", "version", "-f", "{{.Server.Version}}"], check=False
        ).stdout.strip(),
        "docker_compose": run(
            ["docker", "compose", "version", "--short"], check=False
        ).stdout.strip(),
        "image": image,
        "image_id": run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", image], check=False
        ).stdout.strip()[:19],
        "ray_version": labels.get("io.ray-serve-haproxy.ray.version"),
        "haproxy_version": labels.get("io.ray-serve-haproxy.haproxy.version"),
    }


# ----------------------------------------------------------------------------- wrk


@dataclass
class Target:
    path: str
    url: str
    spread: list[str] = field(default_factory=list)  # host:port per replica (direct path)
    grpc: bool = False  # h2load with GRPC_REQUEST instead of wrk


def load(
    loadgen: str, target: Target, conns: int, duration: float, args: argparse.Namespace
) -> dict[str, Any]:
    """One measurement of target at conns concurrent connections: wrk's or h2load's."""
    run_one = h2load if target.grpc else wrk
    return run_one(loadgen, target, conns, duration, args)


def wrk(
    loadgen: str, target: Target, conns: int, duration: float, args: argparse.Namespace
) -> dict[str, Any]:
    threads = args.threads
    if target.spread:  # an equal share of threads (so of connections) per replica
        n = len(target.spread)
        threads = max(n, -(-threads // n) * n)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{duration:g}s",
        f"--timeout={args.timeout:g}s",
        "--latency",
        "-s",
        LOADGEN_SCRIPT,
        target.url,
    ]
    env = {"WRK_TARGETS": ",".join(target.spread)} if target.spread else None
    out = dexec(loadgen, cmd, env=env, timeout=duration + 60)
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            result = json.loads(line[len("WRK_JSON ") :])
            result["concurrency"] = conns
            return result
    raise BenchError(f"wrk printed no WRK_JSON line:\n{out[-2000:]}")


# ----------------------------------------------------------------------------- h2load


H2LOAD_LOG_MARK = "H2LOAD_LOG"
# Runs h2load ("$@" after the log's path $1), then prints its --log-file after its report.
H2LOAD_SCRIPT = (
    f'log=$1; shift; "$@"; rc=$?; echo {H2LOAD_LOG_MARK}; cat "$log"; rm -f "$log"; exit $rc'
)


def h2load(
    loadgen: str, target: Target, conns: int, duration: float, args: argparse.Namespace
) -> dict[str, Any]:
    """gRPC unary calls with h2load: `conns` HTTP/2 connections, one call in flight on each
    (as wrk's connections). h2load sends to one address per run, so the direct path runs
    one h2load per replica at once, with an equal share of connections and threads."""
    addrs = target.spread or [target.url.split("/")[2]]
    n = len(addrs)
    shares = [conns // n + (i < conns % n) for i in range(n)]
    threads = max(1, args.threads // n)
    jobs = [
        (f"http://{a}{GRPC_METHOD}", c, min(threads, c), f"/tmp/h2load-{i}.log")
        for i, (a, c) in enumerate(zip(addrs, shares, strict=True))
        if c
    ]

    def one(job: tuple[str, int, int, str]) -> dict[str, Any]:
        url, c, t, logfile = job
        cmd = ["h2load", f"-t{t}", f"-c{c}", "-m1", f"-D{duration:g}", f"-N{args.timeout:g}s"]
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


def parse_h2load(out: str, duration: float) -> dict[str, Any]:
    """Counts from h2load's report and the request times of its log (after the mark)."""
    report, mark, log_text = out.partition(f"\n{H2LOAD_LOG_MARK}\n")
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


def latency_summary(times: list[int]) -> dict[str, float]:
    """Min, mean, stdev, max and percentiles (nearest rank) of sorted times."""
    if not times:
        return {k: 0 for k in ("min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99_9")}

    def pct(p: float) -> int:
        return times[max(0, math.ceil(p / 100 * len(times)) - 1)]

    return {
        "min": times[0],
        "mean": round(statistics.fmean(times), 1),
        "stdev": round(statistics.pstdev(times), 1),
        "max": times[-1],
        **{f"p{str(p).replace('.', '_')}": pct(p) for p in (50, 75, 90, 99, 99.9)},
    }


def socket_errors(r: dict[str, Any]) -> int:
    e = r["errors"]
    return int(e["connect"] + e["read"] + e["write"] + e["timeout"])


def short(r: dict[str, Any]) -> str:
    lat = r["latency_us"]
    return (
        f"{r['requests_per_s']:8.0f} req/s  p50 {lat['p50'] / 1000:7.2f} ms  "
        f"p99 {lat['p99'] / 1000:8.2f} ms  non-2xx {r['non_2xx']}  sock-err {socket_errors(r)}"
    )


# ------------------------------------------------------------------------- profile


TOP = ["top", "-b", "-c", "-w", "512", "-n", "2", "-d", "2"]


def top_sample(container: str | None, limit: int = 8) -> list[dict[str, Any]]:
    """Per-process CPU over 2 s (second iteration of top), busiest first.

    container None: the host itself, where dockerd and the containerd shims relay every
    line the containers print (their cost shows in no container's `docker stats`)."""
    if container is None:
        out = run(TOP, check=False, timeout=30).stdout
    else:
        out = dexec(container, TOP, check=False, timeout=30)
    blocks = re.split(r"(?m)^top - ", out)
    last = blocks[-1] if blocks else ""
    rows = []
    header_seen = False
    for line in last.splitlines():
        if re.match(r"\s*PID\s+USER", line):
            header_seen = True
            continue
        if not header_seen or not line.strip():
            continue
        parts = line.split(None, 11)
        if len(parts) < 12:
            continue
        try:
            cpu = float(parts[8])
        except ValueError:
            continue
        if cpu >= 1.0:
            rows.append({"cpu_pct": cpu, "command": parts[11][:300]})
    return sorted(rows, key=lambda r: -r["cpu_pct"])[:limit]


def docker_stats(names: list[str]) -> dict[str, str]:
    out = run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.CPUPerc}}", *names],
        check=False,
        timeout=30,
    ).stdout
    return dict(ln.split("\t", 1) for ln in out.splitlines() if "\t" in ln)


def _service_of(container_name: str) -> str:
    """rshbench-worker-2 -> worker-2, rshbench-head-1 -> head."""
    m = re.search(r"[-_](head|loadgen|worker)[-_](\d+)$", container_name)
    if not m:
        return container_name
    return f"worker-{m.group(2)}" if m.group(1) == "worker" else m.group(1)


def profile_round(
    cluster: Cluster, phase: Phase, loadgen: str, target: Target, args: argparse.Namespace
) -> dict[str, Any]:
    """A separate, unscored wrk run at the profile level, sampled while it runs."""
    head = cluster.head()
    workers = cluster.containers("worker")
    names = [head, *workers, loadgen]
    samples: dict[str, Any] = {}

    def sample() -> None:
        time.sleep(min(2.0, args.profile_duration / 4))
        jobs = {
            "docker_stats_cpu_pct": lambda: docker_stats(names),
            "top_head": lambda: top_sample(head),
            "top_worker": lambda: top_sample(workers[0]) if workers else [],
            "top_host": lambda: top_sample(None, limit=15),
        }
        if phase.haproxy and phase.info.get("admin_socket"):
            sock = phase.info["admin_socket"]

            def info() -> dict[str, str]:
                txt = haproxy_show(head, sock, "show info")
                keep = ("Nbthread", "Idle_pct", "CurrConns", "Run_queue", "Tasks", "Version")
                return {
                    k: v.strip()
                    for k, _, v in (ln.partition(":") for ln in txt.splitlines())
                    if k in keep
                }

            jobs["haproxy_show_info_head"] = info
        ts = [
            threading.Thread(target=lambda k=k, f=f: samples.__setitem__(k, f()))
            for k, f in jobs.items()
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = wrk(loadgen, target, args.profile_level, args.profile_duration, args)
    sampler.join()
    stats = samples.get("docker_stats_cpu_pct", {})
    samples["docker_stats_cpu_pct"] = {_service_of(n): c for n, c in stats.items()}
    samples["wrk"] = {k: result[k] for k in ("requests_per_s", "latency_us", "non_2xx", "errors")}
    samples["concurrency"] = args.profile_level
    return samples


# ----------------------------------------------------------------------------- run


def targets_for(phase: Phase) -> list[Target]:
    out = []
    for path in phase.paths:
        if path == "direct":
            reps = phase.info["replicas"]
            out.append(Target(path, f"http://{reps[0]}{ROUTE}", spread=list(reps)))
        elif path == "grpc_direct":
            reps = phase.info["grpc_replicas"]
            out.append(Target(path, f"http://{reps[0]}{GRPC_METHOD}", spread=list(reps), grpc=True))
        elif path in GRPC_PATHS:
            out.append(Target(path, f"http://head:{GRPC_PORT}{GRPC_METHOD}", grpc=True))
        else:
            out.append(Target(path, f"http://head:8000{ROUTE}"))
    return out


def check_grpc_targets(loadgen: str, phase: Phase, targets: list[Target]) -> None:
    """Before measuring: one call to every gRPC address must answer grpc-status 0 with the
    expected reply (h2load itself sees HTTP statuses only). Fails the run otherwise."""
    for t in targets:
        if not t.grpc:
            continue
        addrs = t.spread or [t.url.split("/")[2]]
        failed = grpc_failures(loadgen, addrs)
        if failed:
            raise BenchError(f"gRPC path {t.path}: calls not OK before measuring: {failed}")
        phase.info.setdefault("grpc_checked", {})[t.path] = {
            a: f"grpc-status 0, {len(GRPC_REPLY)}-byte reply" for a in addrs
        }
        log(f"{phase.name:>18} {t.path:>16} grpc-status 0 from {', '.join(addrs)}")


def measure_phase(
    cluster: Cluster, phase: Phase, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    loadgen = cluster.loadgen()
    all_targets = targets_for(phase)
    check_grpc_targets(loadgen, phase, all_targets)
    for level in args.levels:
        # gRPC only at --grpc-levels
        targets = [t for t in all_targets if not t.grpc or level in args.grpc_levels]
        for t in targets:
            w = load(loadgen, t, level, args.warmup, args)
            log(f"{phase.name:>18} {t.path:>16} c={level:<4} warm-up   {short(w)}")
            results.setdefault(t.path, {}).setdefault(str(level), {"rounds": []})["warmup"] = w
        for rnd in range(args.rounds):
            k = rnd % len(targets)  # rotate who goes first
            for t in targets[k:] + targets[:k]:
                r = load(loadgen, t, level, args.duration, args)
                r["round"] = rnd + 1
                log(f"{phase.name:>18} {t.path:>16} c={level:<4} round {rnd + 1}   {short(r)}")
                results[t.path][str(level)]["rounds"].append(r)
    if args.profile_level:
        for t in [t for t in all_targets if not t.grpc]:  # HTTP only
            log(f"{phase.name:>18} {t.path:>16} c={args.profile_level:<4} profiling run")
            phase.info.setdefault("profile", {})[t.path] = profile_round(
                cluster, phase, loadgen, t, args
            )


def agg(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(cell: dict[str, Any]) -> dict[str, Any]:
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


def grpc_ratios(data: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The HTTP ratios for gRPC, at the levels where the HAProxy path was measured."""
    res = data["results"]

    def s(path: str, level: str) -> dict[str, Any] | None:
        summary: dict[str, Any] | None = res.get(path, {}).get(level, {}).get("summary")
        return summary

    out = {}
    for lv in sorted(res.get("grpc_haproxy", {}), key=int):
        h, p, d = s("grpc_haproxy", lv), s("grpc_python_proxy", lv), s("grpc_direct", lv)
        out[lv] = {
            "haproxy_over_python_rps": ratio(med(h, "requests_per_s"), med(p, "requests_per_s")),
            "haproxy_over_direct_rps": ratio(med(h, "requests_per_s"), med(d, "requests_per_s")),
            "haproxy_over_python_p99": ratio(med(h, "p99_ms"), med(p, "p99_ms")),
            "haproxy_over_direct_p99": ratio(med(h, "p99_ms"), med(d, "p99_ms")),
        }
    return out


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


def analyze(data: dict[str, Any]) -> None:
    res = data["results"]
    for cells in res.values():
        for cell in cells.values():
            cell["summary"] = summarize(cell)
    levels = data["settings"]["levels"]
    var = data.get("variant_path")

    def s(path: str, level: int) -> dict[str, Any] | None:
        return res.get(path, {}).get(str(level), {}).get("summary")

    ratios = {}
    for lv in levels:
        h, p, d = s("haproxy", lv), s("python_proxy", lv), s("direct", lv)
        row = {
            "haproxy_over_python_rps": ratio(med(h, "requests_per_s"), med(p, "requests_per_s")),
            "haproxy_over_direct_rps": ratio(med(h, "requests_per_s"), med(d, "requests_per_s")),
            "haproxy_over_python_p99": ratio(med(h, "p99_ms"), med(p, "p99_ms")),
            "haproxy_over_direct_p99": ratio(med(h, "p99_ms"), med(d, "p99_ms")),
        }
        if var:
            v = s(var, lv)
            row["nbthread_variant_over_default_rps"] = ratio(
                med(v, "requests_per_s"), med(h, "requests_per_s")
            )
            row["nbthread_variant_over_default_p99"] = ratio(med(v, "p99_ms"), med(h, "p99_ms"))
            # Each against the direct path measured interleaved on its own cluster: the
            # comparison that cancels cluster-to-cluster (and minute-to-minute) drift.
            vd = s(f"{var}_direct", lv)
            row["nbthread_variant_over_default_rps_vs_direct"] = ratio(
                ratio(med(v, "requests_per_s"), med(vd, "requests_per_s")),
                ratio(med(h, "requests_per_s"), med(d, "requests_per_s")),
            )
        ratios[str(lv)] = row
    data["ratios"] = ratios
    data["grpc_ratios"] = grpc_ratios(data)

    tl = data["settings"]["target_level"]
    r = ratios.get(str(tl), {})
    errs = error_total(res.get("haproxy", {}))

    def check(name: str, value: float | None, goal: str, ok: bool | None) -> dict[str, Any]:
        return {"target": name, "value": value, "goal": goal, "met": ok}

    hp, hd, pd = (
        r.get("haproxy_over_python_rps"),
        r.get("haproxy_over_direct_rps"),
        r.get("haproxy_over_direct_p99"),
    )
    data["targets"] = [
        check(
            f"HAProxy / Python proxy throughput at c={tl}",
            hp,
            ">= 10",
            None if hp is None else hp >= 10,
        ),
        check(
            f"HAProxy / direct throughput at c={tl}",
            hd,
            ">= 0.9",
            None if hd is None else hd >= 0.9,
        ),
        check(f"HAProxy p99 / direct p99 at c={tl}", pd, "<= 2", None if pd is None else pd <= 2),
        check(
            "errors through HAProxy (non-2xx + socket, warm-ups included), all levels",
            errs,
            "0 at every level",
            None if errs is None else errs == 0,
        ),
    ]
    grpc_errs = error_total(res.get("grpc_haproxy", {}))
    if grpc_errs is not None:
        data["targets"].append(
            check(
                "gRPC errors through HAProxy (calls not OK + socket, warm-ups included)",
                grpc_errs,
                "0",
                grpc_errs == 0,
            )
        )


# -------------------------------------------------------------------------- output


def label(path: str, data: dict[str, Any]) -> str:
    if path == data.get("variant_path"):
        return PATH_LABELS["haproxy_nbthread"].format(n=data["variant_nbthread"])
    if path == "haproxy":
        nb = data["phases"].get("haproxy", {}).get("nbthread")
        return f"HAProxy mode (:8000), NBTHREAD={nb}" if nb else PATH_LABELS["haproxy"]
    return PATH_LABELS.get(path, path)


def fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def fx(x: float | None, digits: int) -> str:
    """A ratio: 1.23x, or n/a."""
    return "n/a" if x is None else f"{x:,.{digits}f}{TIMES}"


def cell_text(a: dict[str, float] | None, digits: int) -> str:
    if not a:
        return "n/a"
    return f"{fmt(a['median'], digits)} ({fmt(a['min'], digits)}{DASH}{fmt(a['max'], digits)})"


def _variant_over_direct(data: dict[str, Any], level: int) -> float | None:
    var = data["variant_path"]
    res = data["results"]
    v = res.get(var, {}).get(str(level), {}).get("summary")
    vd = res.get(f"{var}_direct", {}).get(str(level), {}).get("summary")
    return ratio(med(v, "requests_per_s"), med(vd, "requests_per_s"))


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def path_order(data: dict[str, Any]) -> list[str]:
    order = ["haproxy", "python_proxy", "direct", data.get("variant_path") or ""]
    return [p for p in order if p in data["results"]]


def result_rows(data: dict[str, Any], paths: list[str]) -> list[str]:
    lines = []
    for path in paths:
        for lv in data["settings"]["levels"]:
            c = data["results"][path].get(str(lv))
            if not c:
                continue
            s = c["summary"]
            lines.append(
                f"| {label(path, data)} | {lv} | {cell_text(s['requests_per_s'], 0)} | "
                f"{cell_text(s['p50_ms'], 2)} | {cell_text(s['p90_ms'], 2)} | "
                f"{cell_text(s['p99_ms'], 2)} | {s['non_2xx']} | {s['socket_errors']}"
                + (f" ({s['errors']['timeout']} timeouts)" if s["errors"]["timeout"] else "")
                + " |"
            )
    return lines


def ratio_rows(ratios: dict[Any, dict[str, float | None]]) -> list[str]:
    lines = [
        f"| conc. | HAProxy {DIVIDE} Python proxy req/s | HAProxy {DIVIDE} direct req/s | "
        f"HAProxy {DIVIDE} Python proxy p99 | HAProxy {DIVIDE} direct p99 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for lv, r in ratios.items():
        lines.append(
            row(
                str(lv),
                fx(r["haproxy_over_python_rps"], 1),
                fx(r["haproxy_over_direct_rps"], 2),
                fx(r["haproxy_over_python_p99"], 3),
                fx(r["haproxy_over_direct_p99"], 2),
            )
        )
    return lines


def grpc_paths(data: dict[str, Any]) -> list[str]:
    return [p for p in GRPC_PATHS if p in data["results"]]


def grpc_section(data: dict[str, Any]) -> list[str]:
    """The gRPC table and its ratios; nothing for a result without gRPC cells."""
    paths = grpc_paths(data)
    if not paths:
        return []
    st = data["settings"]
    return [
        "",
        f"gRPC: unary `{GRPC_METHOD.strip('/')}` of app `{GRPC_APP}` (the same trivial async "
        f"handler, {REPLICAS} replicas, one per worker), metadata `application: {GRPC_APP}`. "
        "Load: h2load in the same container, one call in flight per HTTP/2 connection "
        f"(concurrency = connections, as for wrk), {st['threads']} threads, same warm-up and "
        "rounds, interleaved with the HTTP paths of the same cluster. Latencies from h2load's "
        "per-request log. h2load sees HTTP statuses only, so every address was first called "
        "once and had to answer `grpc-status: 0`, and a call counts as OK only if its "
        f'{len(GRPC_REPLY)}-byte reply arrived (DATA bytes received); "not OK" counts the '
        "others.",
        "",
        "| path | conc. | requests/s | p50 ms | p90 ms | p99 ms | calls not OK | socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *result_rows(data, paths),
        "",
        "gRPC ratios (medians):",
        "",
        *ratio_rows(data.get("grpc_ratios", {})),
    ]


def render_markdown(data: dict[str, Any]) -> str:
    st, m = data["settings"], data["machine"]
    lines = [
        "# Benchmark: HAProxy mode vs Ray's Python proxy vs direct to replicas",
        "",
        f"Run {data['started']} (took {data['runtime_s'] / 60:.1f} min): `{data['command']}`.",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, "
        f"Linux {m['kernel']}, Docker {m['docker_server']}, Compose {m['docker_compose']}; "
        f"image `{m['image']}` ({m['image_id']}), Ray {m['ray_version']}, "
        f"HAProxy {m['haproxy_version']}.",
        f"Cluster: compose head + 2 workers on this one machine; app `{ROUTE}` (trivial async "
        f"handler), {REPLICAS} replicas, one per worker. Load: wrk in its own container on the "
        f"compose network, {st['threads']} threads, {st['warmup_s']:g} s warm-up then "
        f"{st['rounds']} {TIMES} {st['duration_s']:g} s rounds per cell (paths on the same cluster "
        f"interleaved), timeout {st['timeout_s']:g} s. Values: median (min{DASH}max) over rounds."
        + (
            f" Extra environment on every node: `{st['extra_env']}`." if st.get("extra_env") else ""
        ),
        "",
        "| path | conc. | requests/s | p50 ms | p90 ms | p99 ms | non-2xx | socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *result_rows(data, path_order(data)),
        "",
        "Ratios (medians; throughput: higher is better for HAProxy, p99: lower is better):",
        "",
        *ratio_rows({lv: data["ratios"][str(lv)] for lv in st["levels"]}),
        *grpc_section(data),
    ]
    if data.get("variant_path"):
        nb_default = data["phases"].get("haproxy", {}).get("nbthread")
        lines += [
            "",
            f"HAProxy threads: `RAY_SERVE_HAPROXY_NBTHREAD={data['variant_nbthread']}` against the "
            f"runtime's derived default ({nb_default}), on a separate cluster start with the same "
            "settings. Raw ratio, and the ratio of each one's HAProxy ÷ direct throughput "
            "(direct measured interleaved on its own cluster), which cancels drift between "
            "cluster starts:",
            "",
            row(
                "conc.",
                f"NBTHREAD={nb_default} req/s",
                f"NBTHREAD={data['variant_nbthread']} req/s",
                "ratio",
                f"HAProxy {DIVIDE} direct, {nb_default} / {data['variant_nbthread']}",
                "ratio of those",
                f"NBTHREAD={nb_default} p99 ms",
                f"NBTHREAD={data['variant_nbthread']} p99 ms",
                "ratio",
            ),
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for lv in st["levels"]:
            h = data["results"].get("haproxy", {}).get(str(lv), {}).get("summary")
            v = data["results"][data["variant_path"]].get(str(lv), {}).get("summary")
            r = data["ratios"][str(lv)]
            lines.append(
                f"| {lv} | {cell_text(h and h['requests_per_s'], 0)} | "
                f"{cell_text(v and v['requests_per_s'], 0)} | "
                f"{fx(r.get('nbthread_variant_over_default_rps'), 2)} | "
                f"{fmt(r.get('haproxy_over_direct_rps'), 2)} / "
                f"{fmt(_variant_over_direct(data, lv), 2)} | "
                f"{fx(r.get('nbthread_variant_over_default_rps_vs_direct'), 2)} | "
                f"{cell_text(h and h['p99_ms'], 2)} | {cell_text(v and v['p99_ms'], 2)} | "
                f"{fx(r.get('nbthread_variant_over_default_p99'), 2)} |"
            )
    lines += [
        "",
        "Targets (reported, not enforced):",
        "",
        "| target | value | goal | met |",
        "|---|---:|---|---|",
    ]
    for t in data["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        v = t["value"]
        lines.append(
            f"| {t['target']} | {fmt(v, 2) if isinstance(v, float) else v} | {t['goal']} | {met} |"
        )
    prof = {p: ph.get("profile", {}) for p, ph in data["phases"].items()}
    if any(prof.values()):
        lines += [
            "",
            f"Where the CPU goes at c={st['profile_level']} (separate unscored run, "
            "`docker stats` and `top` inside the containers; 100% = one core):",
            "",
            row(
                "phase / path",
                "req/s",
                "head",
                "worker-1",
                "worker-2",
                "loadgen",
                "dockerd + shims (host)",
                "busiest processes on the head",
                "HAProxy idle %",
            ),
            "|---|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for ph, paths in prof.items():
            for path, p in paths.items():
                ds = p.get("docker_stats_cpu_pct", {})
                top = "; ".join(
                    f"{_proc_name(x['command'])} {x['cpu_pct']:.0f}%"
                    for x in p.get("top_head", [])[:3]
                )
                idle = p.get("haproxy_show_info_head", {}).get("Idle_pct", DASH)
                lines.append(
                    row(
                        f"{ph} / {path}",
                        fmt(p["wrk"]["requests_per_s"]),
                        *(ds.get(k, "?") for k in ("head", "worker-1", "worker-2", "loadgen")),
                        _relay_cpu(p.get("top_host")),
                        top or DASH,
                        idle,
                    )
                )
    if data.get("contended"):
        lines += ["", f"**Warning:** other work ran during the measurement: {data['contended']}."]
    lines += [
        "",
        "![throughput and p99 against concurrency](latest.png)"
        if data["name"] == "latest"
        else f"![throughput and p99 against concurrency]({data['name']}.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def _relay_cpu(rows: list[dict[str, Any]] | None) -> str:
    if rows is None:
        return "?"
    names = ("dockerd", "containerd-shim")
    total = sum(r["cpu_pct"] for r in rows if _proc_name(r["command"]).startswith(names))
    return f"{total:.0f}%"


def _proc_name(cmd: str) -> str:
    m = re.match(r"(ray::\S+)", cmd)
    if m:
        return m.group(1)
    words = [w for w in cmd.split() if not w.startswith("-")] or [cmd]
    if re.search(r"python[\d.]*$", words[0]) and len(words) > 1:
        sub = [w for w in words[2:3] if "/" not in w]  # a subcommand, not a path
        return " ".join([Path(words[1]).name, *sub])
    return Path(words[0]).name


def render_chart(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = data["settings"]["levels"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {
        "haproxy": dict(color="#1f77b4", marker="o"),
        "python_proxy": dict(color="#d62728", marker="s"),
        "direct": dict(color="#2ca02c", marker="^"),
        # gRPC (one level only): hollow markers in the colours of the HTTP paths
        "grpc_haproxy": dict(color="#1f77b4", marker="D", markerfacecolor="none"),
        "grpc_python_proxy": dict(color="#d62728", marker="D", markerfacecolor="none"),
        "grpc_direct": dict(color="#2ca02c", marker="D", markerfacecolor="none"),
    }
    for path in path_order(data) + grpc_paths(data):
        style = styles.get(path, dict(color="#1f77b4", marker="o", linestyle="--", alpha=0.7))
        for ax, key in ((ax1, "requests_per_s"), (ax2, "p99_ms")):
            xs, ys, lo, hi = [], [], [], []
            for lv in levels:
                s = data["results"][path].get(str(lv), {}).get("summary", {}).get(key)
                if s:
                    xs.append(lv)
                    ys.append(s["median"])
                    lo.append(s["median"] - s["min"])
                    hi.append(s["max"] - s["median"])
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, label=label(path, data), **style)
    m = data["machine"]
    xlabel = "concurrent connections (wrk" + ("; gRPC \u25c7: h2load)" if grpc_paths(data) else ")")
    for ax, title, ylabel in (
        (ax1, "Throughput", f"requests/s (median, min{DASH}max)"),
        (ax2, "p99 latency", f"ms, log scale (median, min{DASH}max)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels)
        ax.set_xticklabels([str(lv) for lv in levels])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylim(bottom=0)
    ax2.set_yscale("log")
    ax1.legend(fontsize=8, loc="best")
    fig.suptitle(
        f"Ray Serve {m['ray_version']} on compose (head + 2 workers), {m['nproc']} CPUs "
        f"{m['cpu_model']}, HAProxy {m['haproxy_version']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def print_ratios(data: dict[str, Any]) -> None:
    print()
    print(
        "Ratios (medians)" + " " * 18 + "".join(f"c={lv:<8}" for lv in data["settings"]["levels"])
    )
    rows = [
        ("HAProxy / Python req/s", "haproxy_over_python_rps", 1),
        ("HAProxy / direct req/s", "haproxy_over_direct_rps", 2),
        ("HAProxy / Python p99", "haproxy_over_python_p99", 3),
        ("HAProxy / direct p99", "haproxy_over_direct_p99", 2),
    ]
    if data.get("variant_path"):
        rows += [
            (
                f"NBTHREAD={data['variant_nbthread']} / default req/s",
                "nbthread_variant_over_default_rps",
                2,
            ),
            (
                f"NBTHREAD={data['variant_nbthread']} / default p99",
                "nbthread_variant_over_default_p99",
                2,
            ),
            (
                f"NBTHREAD={data['variant_nbthread']} / default, vs direct",
                "nbthread_variant_over_default_rps_vs_direct",
                2,
            ),
        ]
    for name, key, d in rows:
        vals = [data["ratios"][str(lv)].get(key) for lv in data["settings"]["levels"]]
        print(f"  {name:<32}" + "".join(f"{fx(v, d):<10}" for v in vals))
    grpc = data.get("grpc_ratios", {})
    for name, key, d in rows[:4] if grpc else []:
        vals = [grpc.get(str(lv), {}).get(key) for lv in data["settings"]["levels"]]
        print(f"  {'gRPC ' + name:<32}" + "".join(f"{fx(v, d):<10}" for v in vals))
    print()
    for t in data["targets"]:
        met = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        v = t["value"]
        shown = fmt(v, 2) if isinstance(v, float) else v
        print(f"  [{met:>6}] {t['target']}: {shown} (goal {t['goal']})")
    print()


def write_outputs(data: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = data["name"]
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(render_markdown(data))
    render_chart(data, out_dir / f"{name}.png")
    log(f"wrote {out_dir / name}.json, .md, .png")
    if name == "latest":
        update_readme(data, out_dir)


README = Path(__file__).resolve().parents[1] / "README.md"
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def update_readme(data: dict[str, Any], out_dir: Path) -> None:
    """Puts the latest run's tables and chart into README's Performance section."""
    text = README.read_text()
    if README_START not in text or README_END not in text:
        return
    body = render_markdown(data).split("\n", 1)[1].strip()  # the section has its own heading
    chart = (out_dir / f"{data['name']}.png").resolve().relative_to(README.parent)
    body = body.replace(f"]({data['name']}.png)", f"]({chart})")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    README.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}")
    log(f"updated the Performance section of {README.name}")


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--levels", default="16,64,256", help="concurrency levels (default 16,64,256)")
    ap.add_argument(
        "--grpc-levels",
        default="64",
        help="levels (of --levels) that also measure gRPC (default 64; '' or 0: no gRPC)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10, help="seconds per round")
    ap.add_argument("--warmup", type=float, default=5, help="seconds of warm-up per path and level")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wrk threads")
    ap.add_argument("--timeout", type=float, default=5, help="wrk request timeout, seconds")
    ap.add_argument("--variant-nbthread", type=int, default=4, help="0 skips the NBTHREAD variant")
    ap.add_argument(
        "--phases",
        default="haproxy,python,variant",
        help="which cluster configurations to run (default all: haproxy,python,variant)",
    )
    ap.add_argument("--profile-level", type=int, default=64, help="0 skips the profiling runs")
    ap.add_argument("--profile-duration", type=float, default=8)
    ap.add_argument("--target-level", type=int, default=64)
    ap.add_argument("--project", default=os.environ.get("RSH_BENCH_PROJECT", "rshbench"))
    ap.add_argument("--image", default=os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest"))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--name", default="latest", help="output file stem (default latest)")
    ap.add_argument("--wait-timeout", type=int, default=300, help="cluster start timeout, seconds")
    ap.add_argument(
        "--max-wait-others", type=float, default=1800, help="seconds to wait for other work"
    )
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for head and workers in every phase (experiments)",
    )
    ap.add_argument("--keep", action="store_true", help="leave the last cluster running")
    ap.add_argument("--render-only", type=Path, help="redraw table and chart from a result JSON")
    args = ap.parse_args(argv)
    args.levels = [int(x) for x in str(args.levels).split(",") if x]
    grpc_levels = {int(x) for x in str(args.grpc_levels).split(",") if x.strip()}
    args.grpc_levels = [lv for lv in args.levels if lv in grpc_levels]
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    bad = [e for e in args.env if "=" not in e]
    if bad:
        ap.error(f"--env wants KEY=VALUE, got {bad}")
    args.env = dict(e.split("=", 1) for e in args.env)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.render_only:
        data = json.loads(args.render_only.read_text())
        data["name"] = args.render_only.stem  # rewrites FILE.md and .png beside it, no other
        analyze(data)
        write_outputs(data, args.render_only.parent)
        print_ratios(data)
        return 0

    signal.signal(signal.SIGTERM, _interrupt)  # tear down on SIGTERM like on Ctrl-C
    t0 = time.monotonic()
    phases = []
    grpc = args.grpc_levels != []
    if "haproxy" in args.phases:
        paths = ["haproxy", "direct", *(["grpc_haproxy", "grpc_direct"] if grpc else [])]
        phases.append(Phase("haproxy", {"RAY_SERVE_ENABLE_HA_PROXY": "1"}, paths, True))
    if "python" in args.phases:
        paths = ["python_proxy", *(["grpc_python_proxy"] if grpc else [])]
        phases.append(Phase("python_proxy", {"RAY_SERVE_ENABLE_HA_PROXY": "0"}, paths, False))
    variant_path = None
    if "variant" in args.phases and args.variant_nbthread:
        variant_path = f"haproxy_nbthread{args.variant_nbthread}"
        phases.append(
            Phase(
                variant_path,
                {
                    "RAY_SERVE_ENABLE_HA_PROXY": "1",
                    "RAY_SERVE_HAPROXY_NBTHREAD": str(args.variant_nbthread),
                },
                # direct again as a control: cluster starts differ by more than NBTHREAD does
                ["haproxy", "direct"],
                True,
            )
        )
    for phase in phases:
        phase.env = {**args.env, **phase.env}
    data: dict[str, Any] = {
        "schema": 1,
        "name": args.name,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "bash scripts/benchmark.sh " + " ".join(argv)
        if argv
        else "bash scripts/benchmark.sh",
        "machine": machine_info(args.image),
        "settings": {
            "levels": args.levels,
            "grpc_levels": args.grpc_levels,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "threads": args.threads,
            "timeout_s": args.timeout,
            "profile_level": args.profile_level,
            "target_level": args.target_level,
            "extra_env": args.env,
            "app": {
                "route": ROUTE,
                "replicas": REPLICAS,
                "config": "benchmarks/app/serve_config.yaml",
            },
            "grpc": {
                "app": GRPC_APP,
                "method": GRPC_METHOD,
                "port": GRPC_PORT,
                "load_generator": "h2load, one call in flight per connection",
                "request_hex": GRPC_REQUEST.hex(),
                "reply_bytes": len(GRPC_REPLY),
            },
        },
        "variant_path": variant_path,
        "variant_nbthread": args.variant_nbthread if variant_path else None,
        "phases": {},
        "results": {},
        "contended": [],
    }
    cluster = Cluster(args.project, args.image)
    log(f"project {args.project}, image {args.image}, phases {[p.name for p in phases]}")
    cluster.down()  # leftovers of an interrupted run
    complete = False
    try:
        for i, phase in enumerate(phases):
            others = wait_for_quiet(args.project, args.max_wait_others)
            data["contended"] += [o for o in others if o not in data["contended"]]
            log(f"phase {phase.name}: starting the cluster with {phase.env}")
            t = time.monotonic()
            cluster.up(phase, args.wait_timeout)
            phase.info["up_s"] = round(time.monotonic() - t, 1)
            wait_ready(cluster, phase, args.wait_timeout)
            phase.info["ready_s"] = round(time.monotonic() - t, 1)
            phase.info["env"] = phase.env
            log(f"phase {phase.name}: ready in {phase.info['ready_s']}s {_phase_brief(phase)}")
            others = other_activity(args.project)
            if others:
                others = wait_for_quiet(args.project, args.max_wait_others)
                data["contended"] += [o for o in others if o not in data["contended"]]
            results: dict[str, Any] = {}
            measure_phase(cluster, phase, args, results)
            for path, cells in results.items():
                key = path
                if phase.name == variant_path:  # haproxy_nbthread4, haproxy_nbthread4_direct
                    key = variant_path if path == "haproxy" else f"{variant_path}_{path}"
                data["results"][key] = cells
            data["phases"][phase.name] = phase.info
            if i < len(phases) - 1 or not args.keep:
                cluster.down()
        complete = True
    finally:
        if not complete:
            log("interrupted or failed: tearing the cluster down")
            if not args.keep:
                cluster.down()
        data["complete"] = complete
        data["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        data["runtime_s"] = round(time.monotonic() - t0, 1)
        if data["results"]:
            if not complete:
                data["name"] = f"{args.name}.incomplete"
            analyze(data)
            write_outputs(data, args.out)
            print_ratios(data)
    log(f"done in {data['runtime_s'] / 60:.1f} min")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _phase_brief(phase: Phase) -> str:
    if phase.haproxy:
        return f"(nbthread {phase.info.get('nbthread')}, replicas {phase.info.get('replicas')})"
    return "(no haproxy on the head)"


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        log(f"FAILED: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
