"""Throughput and p99 against concurrency, one line per path (benchmarks/results/<name>.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report_markdown import DASH, grpc_keys, http_keys, label

STYLES: dict[str, dict[str, Any]] = {
    "haproxy": dict(color="#1f77b4", marker="o"),
    "python_proxy": dict(color="#d62728", marker="s"),
    "direct": dict(color="#2ca02c", marker="^"),
    # gRPC (one level only): hollow markers in the colours of the HTTP paths
    "grpc_haproxy": dict(color="#1f77b4", marker="D", markerfacecolor="none"),
    "grpc_python_proxy": dict(color="#d62728", marker="D", markerfacecolor="none"),
    "grpc_direct": dict(color="#2ca02c", marker="D", markerfacecolor="none"),
}
OTHER = dict(color="#1f77b4", marker="o", linestyle="--", alpha=0.7)


def render_chart(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = data["settings"]["levels"]
    # Paths measured at one level only (log modes at the scoring level) would be lone dots.
    keys = [k for k in http_keys(data) if len(data["results"][k]) > 1] + grpc_keys(data)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for key in keys:
        style = STYLES.get(key, OTHER)
        for ax, metric in ((ax1, "requests_per_s"), (ax2, "p99_ms")):
            xs, ys, lo, hi = [], [], [], []
            for lv in levels:
                s = data["results"][key].get(str(lv), {}).get("summary", {}).get(metric)
                if s:
                    xs.append(lv)
                    ys.append(s["median"])
                    lo.append(s["median"] - s["min"])
                    hi.append(s["max"] - s["median"])
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, label=label(key, data), **style)
    m = data["machine"]
    xlabel = "concurrent connections (wrk" + ("; gRPC \u25c7: h2load)" if grpc_keys(data) else ")")
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
