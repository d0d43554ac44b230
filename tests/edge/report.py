"""docs/edge-security.md's results table, generated from the hostile-client suite's results file.

    python tests/edge/report.py RESULTS.json            # print the table
    python tests/edge/report.py RESULTS.json --write    # replace the block in the docs page
    python tests/edge/report.py RESULTS.json --check    # exit 1 when the block differs

The committed results are docs/edge-security-results.json (a run of tests/edge copied there);
test_report.py checks that the page's block is what this makes of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "edge-security.md"
COMMITTED = REPO / "docs" / "edge-security-results.json"
START = "<!-- edge-results:start -->"
END = "<!-- edge-results:end -->"


def _observed(attack: dict[str, Any]) -> str:
    seen = attack.get("observed", {})
    if "opened" in seen:
        text = f"{seen['closed_by_entry']} of {seen['opened']} closed by the entry"
        if seen.get("last_close_s") is not None:
            text += f" (after {seen['first_close_s']}-{seen['last_close_s']} s)"
        if seen.get("statuses"):
            text += ", answers " + ", ".join(f"{k}: {v}" for k, v in seen["statuses"].items())
        return text
    if "pairs_before_close" in seen:
        return (
            f"{seen['closed_by_entry']} of {seen['connections']} connections closed, after "
            f"{min(seen['pairs_before_close'])}-{max(seen['pairs_before_close'])} pairs"
        )
    if all(isinstance(v, dict) and "statuses" in v for v in seen.values()) and seen:
        got = sorted({s for v in seen.values() for s in v["statuses"]})
        return f"{len(seen)} cases, answered {', '.join(map(str, got)) or 'nothing'}"
    return ", ".join(f"{k} {v}" for k, v in seen.items())


def table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    if meta.get("docker_proxy") is False:
        port = "no docker-proxy (userland-proxy off: the kernel forwards the port)"
    else:
        port = f"docker-proxy open files {meta.get('docker_proxy_nofile')}"
    lines = [
        f"Measured {meta['date']} with {meta['haproxy']}; dockerd open files "
        f"{meta.get('dockerd_nofile')}, {port}; "
        f"{meta['well_behaved_clients']['http']} HTTP + {meta['well_behaved_clients']['grpc']} "
        f"gRPC well-behaved clients; suite {meta.get('suite_s')} s.",
        "",
        "| Attack | Well-behaved failed | p50 / p99 / max ms | Entry peak MiB | Entry peak CPU % "
        "| Entry log lines | Full service after | What the entry did |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in results["attacks"]:
        cells = [
            a["attack"],
            f"{a['failed']} of {a['requests']}",
            f"{a['p50_ms']:.0f} / {a['p99_ms']:.0f} / {a['max_ms']:.0f}",
            f"{a['peak_mem_mib']:.0f}",
            f"{a['peak_cpu_percent']:.0f}",
            str(a["entry_log_lines"]),
            f"{a['recovery_s']:.2f} s",
            _observed(a),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def block(text: str) -> str | None:
    start, end = text.find(START), text.find(END)
    return None if start < 0 or end < start else text[start + len(START) : end]


def replace(text: str, new: str) -> str:
    if block(text) is None:
        raise ValueError(f"no {START} ... {END} block")
    return text[: text.index(START) + len(START)] + "\n" + new + text[text.index(END) :]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv and not argv[0].startswith("--") else COMMITTED
    made = table(json.loads(path.read_text()))
    if "--write" in argv:
        PAGE.write_text(replace(PAGE.read_text(), made))
        return 0
    if "--check" in argv:
        return 0 if (block(PAGE.read_text()) or "").strip() == made.strip() else 1
    sys.stdout.write(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
