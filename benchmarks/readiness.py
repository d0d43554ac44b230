"""Waiting until a phase's cluster serves every path it measures, and checking gRPC answers.

Ready = both apps run REPLICAS replicas (`serve status`), the head answers /bench with 200,
and: in HAProxy mode HAProxy routes to one replica per worker (both answering) and the entry
tier (when measured) answers too, in Python-proxy mode no HAProxy runs on the head; gRPC (when
measured) answers grpc-status 0 everywhere.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from .apps import (
    APP_NAME,
    APPS,
    BACKEND,
    DEPLOYMENT,
    GRPC_BACKEND,
    GRPC_HEADERS,
    GRPC_METHOD,
    GRPC_PORT,
    GRPC_REPLY,
    GRPC_REQUEST,
    GRPC_REQUEST_FILE,
    HTTP_PORT,
    REPLICAS,
    ROUTE,
)
from .compose_cluster import Cluster
from .haproxy_config import backend_servers, haproxy_cfg, haproxy_processes, parse_cfg
from .paths import Target
from .phases import ENTRY_SERVICE, Phase
from .shell import BenchError, dexec, log

# Effective settings of the runtime worth keeping with the results (from `config --json`).
RECORDED_SETTINGS = (
    "RSH_ACCESS_LOG",
    "RAY_SERVE_HAPROXY_METRICS_ENABLED",
    "RAY_SERVE_HAPROXY_LOG_TARGET",
    "RAY_SERVE_HAPROXY_NBTHREAD",
    "RAY_SERVE_ENABLE_HA_PROXY",
)


def http_code(loadgen: str, url: str) -> str:
    out = dexec(
        loadgen,
        ["curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", url],
        check=False,
        timeout=20,
    )
    return out.strip() or "000"


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


def runtime_settings(head: str) -> dict[str, str | None]:
    """What the head's runtime really runs with (`ray-serve-haproxy config --json`)."""
    out = dexec(head, ["ray-serve-haproxy", "config", "--json"], check=False, timeout=60)
    try:
        settings = json.loads(out)["settings"]
    except (ValueError, KeyError):
        return {}
    return {k: (settings.get(k) or {}).get("value") for k in RECORDED_SETTINGS if k in settings}


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


def grpc_failures(loadgen: str, addresses: list[str]) -> dict[str, str]:
    """{address: what went wrong} of a probe call to each address; empty when all were OK."""
    write_grpc_request(loadgen)
    probes = {a: grpc_probe(loadgen, a) for a in addresses}
    return {a: why for a, why in probes.items() if why}


def haproxy_ready(head: str, loadgen: str, phase: Phase) -> str | None:
    """None once HAProxy routes every path of the phase to both replicas, else why not."""
    path, text = haproxy_cfg(head)
    cfg = parse_cfg(text, BACKEND)
    addrs, spread = backend_servers(text, BACKEND)
    codes = [http_code(loadgen, f"http://{a}{ROUTE}") for a in addrs]
    if not spread or set(codes) != {"200"}:
        return f"backend {BACKEND}: {addrs} answered {codes}"
    if phase.grpc:
        grpc_addrs, spread = backend_servers(text, GRPC_BACKEND)
        if not spread:
            return f"backend {GRPC_BACKEND}: servers {grpc_addrs}"
        entry = [f"{ENTRY_SERVICE}:{GRPC_PORT}"] if "grpc_entry" in phase.paths else []
        failed = grpc_failures(loadgen, [f"head:{GRPC_PORT}", *grpc_addrs, *entry])
        if failed:
            return f"gRPC not answering yet: {failed}"
        phase.info["grpc_replicas"] = grpc_addrs
    if "entry" in phase.paths:
        code = http_code(loadgen, f"http://{ENTRY_SERVICE}:{HTTP_PORT}{ROUTE}")
        if code != "200":
            return f"{ENTRY_SERVICE}:{HTTP_PORT}{ROUTE} answered {code}"
    phase.info.update(
        haproxy_cfg=path, nbthread=cfg["nbthread"], admin_socket=cfg["socket"], replicas=addrs
    )
    return None


def python_proxy_ready(head: str, loadgen: str, phase: Phase) -> str | None:
    procs = haproxy_processes(head)
    if procs:
        raise BenchError(f"HAProxy still runs in Python-proxy mode: {procs}")
    if phase.grpc:
        failed = grpc_failures(loadgen, [f"head:{GRPC_PORT}"])
        if failed:
            return f"gRPC not answering yet: {failed}"
    phase.info["haproxy_processes_on_head"] = 0
    return None


def wait_ready(cluster: Cluster, phase: Phase, timeout: float) -> None:
    """Until both apps run 2 replicas and every path of the phase answers: HTTP 200, and
    gRPC calls (when the phase measures gRPC) grpc-status 0."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            head, loadgen = cluster.head(), cluster.loadgen()
            apps = APPS if phase.grpc else {APP_NAME: DEPLOYMENT}
            ok, last = serve_replicas_running(head, apps)
            if ok:
                code = http_code(loadgen, f"http://head:8000{ROUTE}")
                last = f"head:8000{ROUTE} answered {code}"
                if code == "200":
                    ready = haproxy_ready if phase.haproxy else python_proxy_ready
                    not_yet = ready(head, loadgen, phase)
                    if not not_yet:
                        phase.info["runtime_settings"] = runtime_settings(head)
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
        checked: dict[str, Any] = phase.info.setdefault("grpc_checked", {})
        checked[t.path] = {a: f"grpc-status 0, {len(GRPC_REPLY)}-byte reply" for a in addrs}
        log(f"{phase.name:>18} {t.path:>16} grpc-status 0 from {', '.join(addrs)}")
