"""The run's outcome on the terminal: ratios, CPU per request, latency added, goals."""

from __future__ import annotations

from typing import Any

from .report_markdown import fmt, fx, label
from .scoring import RELAYS


def print_summary(data: dict[str, Any]) -> None:
    levels = data["settings"]["levels"]
    print()
    print("Ratios (medians)" + " " * 18 + "".join(f"c={lv:<8}" for lv in levels))
    rows = [
        (f"{who} / {vs} {what}", f"{key}_over_{vs.lower()}_{unit}", d)
        for who, key in (("HAProxy", "haproxy"), ("Entry", "entry"))
        for vs, what, unit, d in (
            ("Python", "req/s", "rps", 1),
            ("direct", "req/s", "rps", 2),
            ("Python", "p99", "p99", 3),
            ("direct", "p99", "p99", 2),
        )
        if key == "haproxy" or any(f"{key}_over_direct_rps" in r for r in data["ratios"].values())
    ]
    for name, key, d in rows:
        vals = [data["ratios"][str(lv)].get(key) for lv in levels]
        print(f"  {name:<32}" + "".join(f"{fx(v, d):<10}" for v in vals))
    grpc = data.get("grpc_ratios", {})
    for name, key, d in rows if grpc else []:
        vals = [grpc.get(str(lv), {}).get(key) for lv in levels]
        print(f"  {'gRPC ' + name:<32}" + "".join(f"{fx(v, d):<10}" for v in vals))
    print()
    print("CPU per request, us (entry node + " + " + ".join(RELAYS) + " = total)")
    # Labels in full: they name the log mode and metrics setting that tell rows apart.
    width = max((len(label(k, data)) for k in data.get("paths", {})), default=40)
    for key, cells in (data.get("cpu") or {}).items():
        for lv, c in cells.items():
            parts = " + ".join(fmt(c[f"{k}_us"]["median"]) for k in RELAYS)
            print(
                f"  {label(key, data):<{width}} c={lv:<4} {fmt(c['entry_us']['median']):>6}"
                f" + {parts} = {fmt(c['total_us']['median'])}"
            )
    added = data.get("latency_added") or {}
    if added:
        print()
        lv = data["settings"].get("latency_level")
        for key, a in added.items():
            print(
                f"  latency added at c={lv}: {label(key, data):<{width}} "
                f"p50 {fmt(a['p50_ms'], 3)} ms, p99 {fmt(a['p99_ms'], 3)} ms"
            )
    print()
    for t in data["targets"]:
        met = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        v = t["value"]
        shown = fmt(v, 3) if isinstance(v, float) else "n/a" if v is None else v
        why = f"; in the way: {t['in_the_way']}" if t.get("in_the_way") else ""
        print(f"  [{met:>6}] {t['target']}: {shown} (goal {t['goal']}){why}")
    print()
