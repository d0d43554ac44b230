"""The results as markdown (benchmarks/results/<name>.md, and docs/benchmark.md's tables)."""

from __future__ import annotations

from typing import Any

from .apps import GRPC_APP, GRPC_METHOD, GRPC_REPLY, REPLICAS, ROUTE
from .paths import GRPC_PATHS, PATHS
from .scoring import RELAYS
from .stats import ratio

TIMES, DASH, DIVIDE = "\u00d7", "\u2013", "\u00f7"


def label(key: str, data: dict[str, Any]) -> str:
    meta = data.get("paths", {}).get(key)
    if meta:
        return str(meta["label"])
    return PATHS[key].label if key in PATHS else key


def fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def fx(x: float | None, digits: int) -> str:
    """A ratio: 1.23x, or n/a."""
    return "n/a" if x is None else f"{x:,.{digits}f}{TIMES}"


def cell_text(a: dict[str, float] | None, digits: int) -> str:
    if not a:
        return "n/a"
    return f"{fmt(a['median'], digits)} ({fmt(a['min'], digits)}{DASH}{fmt(a['max'], digits)})"


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def http_keys(data: dict[str, Any]) -> list[str]:
    return [k for k, m in data.get("paths", {}).items() if not m["grpc"] and k in data["results"]]


def grpc_keys(data: dict[str, Any]) -> list[str]:
    return [p for p in GRPC_PATHS if p in data["results"]]


def result_rows(data: dict[str, Any], keys: list[str]) -> list[str]:
    lines = []
    for key in keys:
        for lv in data["settings"]["levels"]:
            c = data["results"][key].get(str(lv))
            if not c:
                continue
            s = c["summary"]
            lines.append(
                f"| {label(key, data)} | {lv} | {cell_text(s['requests_per_s'], 0)} | "
                f"{cell_text(s['p50_ms'], 2)} | {cell_text(s['p90_ms'], 2)} | "
                f"{cell_text(s['p99_ms'], 2)} | {s['non_2xx']} | {s['socket_errors']}"
                + (f" ({s['errors']['timeout']} timeouts)" if s["errors"]["timeout"] else "")
                + " |"
            )
    return lines


def ratio_rows(ratios: dict[Any, dict[str, float | None]]) -> list[str]:
    """One row per level, for HAProxy on the head, and for the entry tier where measured."""
    lines = [
        f"| path | conc. | {DIVIDE} Python proxy req/s | {DIVIDE} direct req/s | "
        f"{DIVIDE} Python proxy p99 | {DIVIDE} direct p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, who in (("haproxy", "HAProxy"), ("entry", "entry tier")):
        for lv, r in ratios.items():
            if f"{name}_over_direct_rps" not in r:
                continue
            lines.append(
                row(
                    who,
                    str(lv),
                    fx(r[f"{name}_over_python_rps"], 1),
                    fx(r[f"{name}_over_direct_rps"], 2),
                    fx(r[f"{name}_over_python_p99"], 3),
                    fx(r[f"{name}_over_direct_p99"], 2),
                )
            )
    return lines


def cpu_section(data: dict[str, Any]) -> list[str]:
    """CPU per request of every path and level, each part shown, and where it goes."""
    cpu = data.get("cpu") or {}
    if not cpu:
        return []
    lines = [
        "",
        "CPU per request (microseconds of CPU time per answered request, median over rounds) "
        "on the path's entry node: its container's cgroup CPU time (all of it: Ray's daemons "
        "too), plus the host's dockerd, containerd and containerd shims (which relay every "
        "line a container prints) over the same window inside each round. `total` is the "
        "score; the entry node's idle CPU (no load) is given for reference, and `other work` is "
        "the machine's CPU used by anything else meanwhile (% of all CPUs): contention.",
        "",
        row(
            "path",
            "conc.",
            "entry node",
            "entry",
            "dockerd",
            "containerd",
            "shims",
            "**total**",
            "entry idle",
            "log bytes/req",
            "other work",
            "biggest processes on the entry node",
        ),
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in data.get("paths", {}):
        for lv in data["settings"]["levels"]:
            c = cpu.get(key, {}).get(str(lv))
            if not c:
                continue
            procs = [(k, v) for k, v in c["processes_us"].items() if k != "unattributed"]
            top = "; ".join(f"{k} {v:.0f}" for k, v in procs[:4])
            idle = c.get("entry_idle_pct_of_core")
            lines.append(
                row(
                    label(key, data),
                    str(lv),
                    ", ".join(c["entry"]),
                    fmt(c["entry_us"]["median"]),
                    *(fmt(c[f"{k}_us"]["median"]) for k in RELAYS),
                    f"**{fmt(c['total_us']['median'])}**",
                    "n/a" if idle is None else f"{idle:.0f}% of a core",
                    _log_bytes(c),
                    _others(c),
                    top or DASH,
                )
            )
    return lines


def _others(cpu: dict[str, Any]) -> str:
    o = cpu.get("others_pct_of_machine")
    return "n/a" if not o else f"{o['median']:.0f}%"


def _log_bytes(cpu: dict[str, Any]) -> str:
    b = cpu.get("log_bytes_per_request")
    return "n/a" if not b else fmt(b["median"])


def log_mode_section(data: dict[str, Any]) -> list[str]:
    """HAProxy's CPU per request at the scoring level for each access-log / metrics pair."""
    tl = str(data["settings"]["target_level"])
    python = (data.get("cpu") or {}).get("python_proxy", {}).get(tl)
    rows = []
    for key, meta in data.get("paths", {}).items():
        c = (data.get("cpu") or {}).get(key, {}).get(tl)
        if meta["path"] != "haproxy" or not c:
            continue
        s = meta.get("runtime_settings") or {}
        procs = c["processes_us"]
        relay = sum(procs.get(k, 0.0) for k in procs if "syslog" in k or k == "socat")
        rows.append(
            row(
                label(key, data),
                f"`{s.get('RSH_ACCESS_LOG', '?')}`",
                f"`{s.get('RAY_SERVE_HAPROXY_METRICS_ENABLED', '?')}`",
                fmt(procs.get("haproxy")),
                fmt(procs.get("ray::HAProxyManager")),
                fmt(relay) if relay else DASH,
                fmt(sum(c[f"{k}_us"]["median"] for k in RELAYS)),
                f"**{fmt(c['total_us']['median'])}**",
                fx(ratio(python["total_us"]["median"], c["total_us"]["median"]), 1)
                if python
                else "n/a",
                _log_bytes(c),
            )
        )
    if not rows:
        return []
    return [
        "",
        f"HAProxy mode by access-log mode (`RSH_ACCESS_LOG`) and Serve's per-request metrics "
        f"(`RAY_SERVE_HAPROXY_METRICS_ENABLED`), at c={tl}, microseconds of CPU per request:",
        "",
        row(
            "cluster",
            "access log",
            "metrics",
            "haproxy",
            "HAProxyManager",
            "log relay",
            "host relays",
            "**total**",
            f"Python proxy {DIVIDE} this",
            "log bytes/req",
        ),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def latency_section(data: dict[str, Any]) -> list[str]:
    added = data.get("latency_added") or {}
    if not added:
        return []
    lv = data["settings"].get("latency_level")
    lines = [
        "",
        f"Latency added at concurrency {lv}: each path's median p50 and p99 minus the direct "
        "path's (ms):",
        "",
        "| path | p50 added | p99 added | against |",
        "|---|---:|---:|---|",
    ]
    for key, a in added.items():
        lines.append(
            row(label(key, data), fmt(a["p50_ms"], 3), fmt(a["p99_ms"], 3), label(a["vs"], data))
        )
    return lines


def grpc_section(data: dict[str, Any]) -> list[str]:
    """The gRPC table and its ratios; nothing for a result without gRPC cells."""
    keys = grpc_keys(data)
    if not keys:
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
        *result_rows(data, keys),
        "",
        "gRPC ratios (medians):",
        "",
        *ratio_rows(data.get("grpc_ratios", {})),
    ]


def variant_section(data: dict[str, Any]) -> list[str]:
    var = data.get("variant_path")
    if not var:
        return []
    st = data["settings"]
    nb_default = data["phases"].get("haproxy", {}).get("nbthread")
    lines = [
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
    res = data["results"]
    for lv in st["levels"]:
        h = res.get("haproxy", {}).get(str(lv), {}).get("summary")
        v = res.get(var, {}).get(str(lv), {}).get("summary")
        vd = res.get(f"{var}_direct", {}).get(str(lv), {}).get("summary")
        r = data["ratios"][str(lv)]
        v_over_d = ratio(v and v["requests_per_s"]["median"], vd and vd["requests_per_s"]["median"])
        lines.append(
            f"| {lv} | {cell_text(h and h['requests_per_s'], 0)} | "
            f"{cell_text(v and v['requests_per_s'], 0)} | "
            f"{fx(r.get('nbthread_variant_over_default_rps'), 2)} | "
            f"{fmt(r.get('haproxy_over_direct_rps'), 2)} / {fmt(v_over_d, 2)} | "
            f"{fx(r.get('nbthread_variant_over_default_rps_vs_direct'), 2)} | "
            f"{cell_text(h and h['p99_ms'], 2)} | {cell_text(v and v['p99_ms'], 2)} | "
            f"{fx(r.get('nbthread_variant_over_default_p99'), 2)} |"
        )
    return lines


def targets_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Goals (reported, not enforced; where one is missed, the biggest parts of the CPU):",
        "",
        "| goal | value | wanted | met | in the way |",
        "|---|---:|---|---|---|",
    ]
    for t in data["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        v = t["value"]
        shown = fmt(v, 3) if isinstance(v, float) else ("n/a" if v is None else str(v))
        lines.append(row(t["target"], shown, t["goal"], met, t.get("in_the_way") or DASH))
    return lines


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
        *result_rows(data, http_keys(data)),
        *cpu_section(data),
        *log_mode_section(data),
        *latency_section(data),
        "",
        "Ratios (medians; throughput: higher is better for HAProxy, p99: lower is better):",
        "",
        *ratio_rows({lv: data["ratios"][str(lv)] for lv in st["levels"]}),
        *grpc_section(data),
        *variant_section(data),
        *targets_section(data),
    ]
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
