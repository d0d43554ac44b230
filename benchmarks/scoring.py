"""From rounds to scores: summaries, CPU per request per path, latency added, ratios, goals.

`analyze(data)` fills, in the results document (schema: benchmarks/results.schema.json):
- results.<path>.<level>.summary: throughput and latency over the rounds (stats.summarize);
- cpu.<path>.<level>: CPU per request on the path's entry node(s), from their containers'
  cgroup CPU time, plus the host's dockerd, containerd and containerd shims, each part and the
  total in microseconds per request (median over rounds), the containers and processes
  behind it, the entry node's idle CPU for reference, and the bytes its container log grows
  by per request;
- latency_added.<path>: p50 and p99 at the latency level (concurrency 1) minus the direct path's;
- ratios / grpc_ratios: throughput and p99 against the Python proxy and the direct path
  (haproxy_over_*, and entry_over_* where the entry tier was measured);
- targets: issue 18's goals, each with its value, whether it was met, and what is in the way.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from .stats import agg, error_total, med, ratio, summarize

RELAYS = {"dockerd": "dockerd", "containerd": "containerd", "containerd_shim": "containerd-shim"}
# issue 18: CPU per request on the entry node, HAProxy mode over the Python proxy's, per
# (RSH_ACCESS_LOG, RAY_SERVE_HAPROXY_METRICS_ENABLED).
CPU_GOALS = (("all", "1", 10), ("errors", "1", 15), ("off", "0", 25))
P50_ADDED_GOAL_MS = 0.5
DIRECT_RATIO_GOAL = 0.6


def service_of(container: str) -> str:
    """worker-2 -> worker, head -> head."""
    return re.sub(r"-\d+$", "", container)


def _us(ms: float, requests: float) -> float:
    return ms * 1000 / requests


def _median_by_key(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for row in rows for k in row}
    out = {k: round(statistics.median([row.get(k, 0.0) for row in rows]), 1) for k in keys}
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def cpu_per_request(cell: dict[str, Any], entry_service: str) -> dict[str, Any] | None:
    """CPU per request of one (path, level) from the CPU windows of its rounds."""
    rows: list[dict[str, float]] = []
    containers: list[dict[str, float]] = []
    processes: list[dict[str, float]] = []
    log_bytes: list[float] = []
    others: list[float] = []
    entry_names: list[str] = []
    requests = 0
    for r in cell["rounds"]:
        cpu = r.get("cpu")
        if not cpu or cpu.get("requests", 0) <= 0:
            continue
        n = cpu["requests"]
        requests += n
        entry_names = [c for c in cpu["containers_ms"] if service_of(c) == entry_service]
        row = {"entry_us": _us(sum(cpu["containers_ms"][c] for c in entry_names), n)}
        for key, group in RELAYS.items():
            row[f"{key}_us"] = _us(cpu["host_ms"].get(group, 0.0), n)
        row["total_us"] = sum(row.values())
        rows.append(row)
        containers.append({c: _us(ms, n) for c, ms in cpu["containers_ms"].items()})
        merged: dict[str, float] = {}
        for c in entry_names:
            for label, ms in cpu["processes_ms"].get(c, {}).items():
                merged[label] = merged.get(label, 0.0) + _us(ms, n)
        processes.append(merged)
        if cpu.get("others_pct") is not None:
            others.append(cpu["others_pct"])
        logs = cpu.get("log_bytes") or {}
        if all(c in logs for c in entry_names):
            log_bytes.append(round(sum(logs[c] for c in entry_names) / n, 1))
    if not rows:
        return None
    out: dict[str, Any] = {"entry": entry_names, "rounds": len(rows), "requests": requests}
    for key in rows[0]:
        out[key] = agg([round(row[key], 1) for row in rows])
    # Bytes the entry node's container log (Docker's json-file) grew by per request.
    out["log_bytes_per_request"] = agg(log_bytes)
    # The machine's CPU used by anything but the project's containers and Docker's relays.
    out["others_pct_of_machine"] = agg(others)
    out["containers_us"] = _median_by_key(containers)
    out["processes_us"] = _median_by_key(processes)
    return out


def idle_pct(phase_info: dict[str, Any], entry_service: str) -> float | None:
    """The entry node's CPU with no load, in % of one core (the phase's idle window)."""
    idle = phase_info.get("idle_cpu")
    if not idle or not idle.get("window_s"):
        return None
    ms = sum(v for c, v in idle["containers_ms"].items() if service_of(c) == entry_service)
    return round(ms / idle["window_s"] / 10, 1)


def _direct_key(data: dict[str, Any], key: str) -> str | None:
    """The direct path to compare `key` with: the one measured on the same cluster, else the
    main phase's."""
    meta = data["paths"][key]
    want = "grpc_direct" if meta["grpc"] else "direct"
    same = [
        k for k, m in data["paths"].items() if m["path"] == want and m["phase"] == meta["phase"]
    ]
    if same:
        return same[0]
    return want if want in data["results"] else None


def latency_added(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """p50 and p99 at the latency level, each path minus its direct path (medians, ms)."""
    level = str(data["settings"].get("latency_level"))
    out: dict[str, dict[str, Any]] = {}
    for key, meta in data["paths"].items():
        if meta["path"] in ("direct", "grpc_direct"):
            continue
        base_key = _direct_key(data, key)
        cell = data["results"].get(key, {}).get(level, {}).get("summary")
        base = data["results"].get(base_key or "", {}).get(level, {}).get("summary")
        if not cell or not base:
            continue
        out[key] = {
            f"{p}_ms": _diff(med(cell, f"{p}_ms"), med(base, f"{p}_ms")) for p in ("p50", "p99")
        }
        out[key]["vs"] = base_key
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


def _ratio_row(h: Any, p: Any, d: Any, name: str = "haproxy") -> dict[str, float | None]:
    return {
        f"{name}_over_python_rps": ratio(med(h, "requests_per_s"), med(p, "requests_per_s")),
        f"{name}_over_direct_rps": ratio(med(h, "requests_per_s"), med(d, "requests_per_s")),
        f"{name}_over_python_p99": ratio(med(h, "p99_ms"), med(p, "p99_ms")),
        f"{name}_over_direct_p99": ratio(med(h, "p99_ms"), med(d, "p99_ms")),
    }


def _summary(data: dict[str, Any], key: str, level: Any) -> dict[str, Any] | None:
    summary: dict[str, Any] | None = data["results"].get(key, {}).get(str(level), {}).get("summary")
    return summary


def ratios(data: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    var = data.get("variant_path")
    out = {}
    for lv in data["settings"]["levels"]:
        h, p, d = (_summary(data, k, lv) for k in ("haproxy", "python_proxy", "direct"))
        row = _ratio_row(h, p, d)
        entry = _summary(data, "entry", lv)
        if entry:  # the high-availability entry tier, where it was measured
            row.update(_ratio_row(entry, p, d, "entry"))
        if var:
            v, vd = _summary(data, var, lv), _summary(data, f"{var}_direct", lv)
            row["nbthread_variant_over_default_rps"] = ratio(
                med(v, "requests_per_s"), med(h, "requests_per_s")
            )
            row["nbthread_variant_over_default_p99"] = ratio(med(v, "p99_ms"), med(h, "p99_ms"))
            # Each against the direct path measured interleaved on its own cluster: the
            # comparison that cancels cluster-to-cluster (and minute-to-minute) drift.
            row["nbthread_variant_over_default_rps_vs_direct"] = ratio(
                ratio(med(v, "requests_per_s"), med(vd, "requests_per_s")),
                ratio(med(h, "requests_per_s"), med(d, "requests_per_s")),
            )
        out[str(lv)] = row
    return out


def grpc_ratios(data: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The HTTP ratios for gRPC, at the levels where the HAProxy path was measured."""
    out = {}
    for lv in sorted(data["results"].get("grpc_haproxy", {}), key=int):
        h, p, d = (
            _summary(data, k, lv) for k in ("grpc_haproxy", "grpc_python_proxy", "grpc_direct")
        )
        out[lv] = _ratio_row(h, p, d)
        entry = _summary(data, "grpc_entry", lv)
        if entry:
            out[lv].update(_ratio_row(entry, p, d, "entry"))
    return out


def _mode_of(meta: dict[str, Any]) -> tuple[str | None, str | None]:
    s = meta.get("runtime_settings") or {}
    return s.get("RSH_ACCESS_LOG"), s.get("RAY_SERVE_HAPROXY_METRICS_ENABLED")


def _in_the_way(cpu: dict[str, Any], top: int = 4) -> str:
    """The biggest parts of a path's CPU per request: host relays and entry processes."""
    parts = {f"host {g}": cpu[f"{k}_us"]["median"] for k, g in RELAYS.items()}
    parts.update(cpu.get("processes_us", {}))
    parts.pop("unattributed", None)
    biggest = sorted(parts.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name} {us:.0f} us" for name, us in biggest)


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    tl = str(data["settings"]["target_level"])
    out: list[dict[str, Any]] = []

    def check(name: str, value: Any, goal: str, ok: bool | None, why: str = "") -> None:
        out.append({"target": name, "value": value, "goal": goal, "met": ok, "in_the_way": why})

    python_cpu = data["cpu"].get("python_proxy", {}).get(tl)
    haproxy_keys = [k for k, m in data["paths"].items() if m["path"] == "haproxy"]
    for mode, metrics, factor in CPU_GOALS:
        keys = [k for k in haproxy_keys if _mode_of(data["paths"][k]) == (mode, metrics)]
        cpu = next((data["cpu"][k][tl] for k in keys if tl in data["cpu"].get(k, {})), None)
        value = None
        if cpu and python_cpu:
            value = ratio(cpu["total_us"]["median"], python_cpu["total_us"]["median"])
        ok = None if value is None else value <= 1 / factor
        check(
            f"CPU per request on the entry node at c={tl}, HAProxy (access log {mode}, "
            f"metrics {'on' if metrics == '1' else 'off'}) / Python proxy",
            value,
            f"<= 1/{factor} ({1 / factor:.3f})",
            ok,
            _in_the_way(cpu) if cpu and ok is False else "",
        )
    for key, who in (("haproxy", "HAProxy"), ("entry", "the entry tier")):
        if key == "entry" and key not in data["latency_added"]:
            continue  # no entry tier measured
        added = data["latency_added"].get(key, {}).get("p50_ms")
        check(
            f"p50 added by {who} at c={data['settings'].get('latency_level')} (minus direct), ms",
            added,
            f"<= {P50_ADDED_GOAL_MS}",
            None if added is None else added <= P50_ADDED_GOAL_MS,
        )
    proxied = ("grpc_haproxy", "entry", "grpc_entry")
    for key in haproxy_keys + [k for k, m in data["paths"].items() if m["path"] in proxied]:
        errs = error_total(data["results"].get(key, {}))
        check(
            f"errors through {key} (non-2xx or calls not OK, socket errors; warm-ups included)",
            errs,
            "0 at every level",
            None if errs is None else errs == 0,
        )
    hd = data["ratios"].get(tl, {}).get("haproxy_over_direct_rps")
    mode = _mode_of(data["paths"].get("haproxy", {}))
    check(
        f"HAProxy / direct throughput at c={tl} (access log {mode[0]}, metrics {mode[1]})",
        hd,
        f">= {DIRECT_RATIO_GOAL}",
        None if hd is None else hd >= DIRECT_RATIO_GOAL,
    )
    return out


def analyze(data: dict[str, Any]) -> None:
    for cells in data["results"].values():
        for cell in cells.values():
            cell["summary"] = summarize(cell)
    data["cpu"] = {}
    for key, meta in data["paths"].items():
        phase_info = data["phases"].get(meta["phase"], {})
        for level, cell in data["results"].get(key, {}).items():
            cpu = cpu_per_request(cell, meta["entry"])
            if cpu is not None:
                cpu["entry_idle_pct_of_core"] = idle_pct(phase_info, meta["entry"])
                data["cpu"].setdefault(key, {})[level] = cpu
    data["latency_added"] = latency_added(data)
    data["ratios"] = ratios(data)
    data["grpc_ratios"] = grpc_ratios(data)
    data["targets"] = targets(data)
