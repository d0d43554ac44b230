"""Puts a run's numbers into the docs, each between its markers: every table and the chart into
docs/benchmark.md, a short headline table into README.md. `stale_docs` says which differ from a
result (the unit test holds the committed docs to benchmarks/results/latest.json)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .report_markdown import DASH, TIMES, fmt, label, render_markdown
from .shell import log

REPO = Path(__file__).resolve().parents[1]
BENCHMARK_DOC = REPO / "docs" / "benchmark.md"
README = REPO / "README.md"
FULL = ("<!-- benchmark:start -->", "<!-- benchmark:end -->")
HEADLINE = ("<!-- benchmark-headline:start -->", "<!-- benchmark-headline:end -->")

# The headline's rows, in this order, where the run measured them.
HEADLINE_PATHS = (
    "haproxy",
    "entry",
    "python_proxy",
    "direct",
    "grpc_haproxy",
    "grpc_entry",
    "grpc_python_proxy",
    "grpc_direct",
)


def full_block(data: dict[str, Any], out_dir: Path, doc: Path) -> str:
    """Every table of the run (the results markdown without its title) and the chart, linked
    from where `doc` lies."""
    body = render_markdown(data).split("\n", 1)[1].strip()  # the page has its own heading
    chart = os.path.relpath((out_dir / f"{data['name']}.png").resolve(), doc.parent.resolve())
    return body.replace(f"]({data['name']}.png)", f"]({chart})")


def _summary(data: dict[str, Any], key: str, level: int) -> dict[str, Any] | None:
    cell = data["results"].get(key, {}).get(str(level))
    return cell["summary"] if cell else None


def _failed(data: dict[str, Any]) -> int:
    """Non-2xx answers, calls not OK and socket errors over every path and level."""
    return sum(
        cell["summary"]["non_2xx"] + cell["summary"]["socket_errors"]
        for cells in data["results"].values()
        for cell in cells.values()
    )


def headline_block(data: dict[str, Any]) -> str:
    """A few lines for the README: each main path at the scoring level, and the two ratios."""
    st, m = data["settings"], data["machine"]
    level, lat_level = st["target_level"], st["latency_level"]
    cpu, added = data.get("cpu") or {}, data.get("latency_added") or {}
    rows = []
    for key in HEADLINE_PATHS:
        s = _summary(data, key, level)
        if s is None:
            continue
        c = cpu.get(key, {}).get(str(level))
        a = added.get(key)
        rows.append(
            f"| {label(key, data)} | {fmt(s['requests_per_s']['median'])} | "
            f"{fmt(s['p99_ms']['median'], 1)} | {fmt(c and c['total_us']['median'])} | "
            f"{DASH if a is None else fmt(a['p50_ms'], 2)} |"
        )
    ratios = data["ratios"].get(str(level), {})
    python_cpu = cpu.get("python_proxy", {}).get(str(level))
    haproxy_cpu = cpu.get("haproxy", {}).get(str(level))
    cpu_ratio = (
        python_cpu["total_us"]["median"] / haproxy_cpu["total_us"]["median"]
        if python_cpu and haproxy_cpu
        else None
    )
    return "\n".join(
        [
            f"Run {data['started'][:10]} on {m['nproc']} CPUs, everything on one machine "
            f"(compose head + 2 workers, a trivial app with 2 replicas; Ray {m['ray_version']}, "
            f"HAProxy {m['haproxy_version']}); medians at concurrency {level}:",
            "",
            f"| path | requests/s | p99 ms | CPU µs per request | p50 ms added at "
            f"concurrency {lat_level} |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            "CPU per request: of the node that takes the client's traffic, its whole container "
            "plus the host's log relays (direct: the workers, replicas included; entry tier: its "
            "own container, on top of a node's).",
            f"HAProxy mode: {fmt(ratios.get('haproxy_over_python_rps'), 1)}{TIMES} the Python "
            f"proxy's throughput for 1/{fmt(cpu_ratio, 1)} of its CPU per request. Failed requests "
            f"on every path and level: {_failed(data)}.",
        ]
    )


def replace_between(text: str, markers: tuple[str, str], body: str) -> str | None:
    """`text` with `body` between the markers; None when they are missing."""
    start, end = markers
    if start not in text or end not in text:
        return None
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    return f"{head}{start}\n{body}\n{end}{tail}"


def _blocks(
    data: dict[str, Any], out_dir: Path, doc: Path, readme: Path
) -> list[tuple[Path, tuple[str, str], str]]:
    return [
        (doc, FULL, full_block(data, out_dir, doc)),
        (readme, HEADLINE, headline_block(data)),
    ]


def stale_docs(
    data: dict[str, Any], out_dir: Path, doc: Path = BENCHMARK_DOC, readme: Path = README
) -> list[str]:
    """The docs whose block is missing or differs from what `data` renders to."""
    stale = []
    for path, markers, body in _blocks(data, out_dir, doc, readme):
        text = path.read_text()
        if replace_between(text, markers, body) != text:
            stale.append(f"{path.name} ({markers[0]})")
    return stale


def update_docs(
    data: dict[str, Any], out_dir: Path, doc: Path = BENCHMARK_DOC, readme: Path = README
) -> bool:
    """Rewrites both blocks; False (nothing written) when a file lacks its markers."""
    updated = []
    for path, markers, body in _blocks(data, out_dir, doc, readme):
        text = replace_between(path.read_text(), markers, body)
        if text is None:
            return False
        updated.append((path, text))
    for path, text in updated:
        path.write_text(text)
    log(f"updated the benchmark in {', '.join(p.name for p, _ in updated)}")
    return True
