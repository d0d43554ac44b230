"""Renders the differential test's report (docs/switching/differences.json) as markdown: the
list of cases (differences.md) with both modes' answers on one page per part
(differences-<part>.md), written by the suite with the JSON, and the switching guide
(docs/switching/guide.md), which this script generates; a unit test keeps all of them in step:

    python tests/differential/report.py --write   # regenerate the markdown from the JSON
    python tests/differential/report.py --check   # exit 1 when any of it is out of date

Standard library only, so it runs anywhere as a script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REPORT_DIR = REPO / "docs" / "switching"
REPORT_JSON = REPORT_DIR / "differences.json"
REPORT_MD = REPORT_DIR / "differences.md"
GUIDE_MD = REPORT_DIR / "guide.md"
MODES = ("haproxy", "python_proxy")
MODE_TITLES = {"haproxy": "HAProxy mode", "python_proxy": "Python proxy"}
CLASS_TITLES = {"defect": "defect", "expected": "expected", "same": "same"}
MAX_CELL = 160


def cell(value: Any, limit: int = MAX_CELL) -> str:
    """A value as a markdown table cell: compact JSON, pipes escaped, long values cut."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else "(empty)"


def upstream_links(refs: list[str]) -> str:
    links = []
    for ref in refs:
        repo, _, number = ref.partition("#")
        if repo and number:
            links.append(f"[{ref}](https://github.com/{repo}/issues/{number})")
        else:
            links.append(ref)
    return ", ".join(links) if links else "none known"


def versions_line(data: dict[str, Any]) -> str:
    v = data.get("versions") or {}
    return f"Measured with Ray {v.get('ray', '?')} and HAProxy {v.get('haproxy', '?')}."


def summary_line(data: dict[str, Any]) -> str:
    s = data["summary"]
    return (
        f"{s['cases']} cases: {s.get('same', 0)} answer alike, {s.get('expected', 0)} differ "
        f"as expected, {s.get('defect', 0)} differ because of a defect."
    )


def field_table(case: dict[str, Any], fields: list[str]) -> list[str]:
    """Rows of the fields' values in both modes; where both are mappings (a JSON body), only
    their keys that differ, as `field.key`."""
    lines = [
        f"| field | {MODE_TITLES['haproxy']} | {MODE_TITLES['python_proxy']} |",
        "|---|---|---|",
    ]
    for name in fields:
        a, b = (case[mode].get(name, "(absent)") for mode in MODES)
        if isinstance(a, dict) and isinstance(b, dict):
            keys = [
                k for k in sorted(set(a) | set(b)) if a.get(k, "(absent)") != b.get(k, "(absent)")
            ]
            for key in keys:
                values = [cell(a.get(key, "(absent)")), cell(b.get(key, "(absent)"))]
                lines.append(f"| {name}.{key} | {values[0]} | {values[1]} |")
            continue
        lines.append(f"| {name} | {cell(a)} | {cell(b)} |")
    return lines


# differences.md lists every case; their answers are on one page per part, so that no page
# grows past what a reader can hold (the docs' tests allow 700 lines). A group not named here
# lands on the part "other".
PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "routes": ("health and routes", ("health and routes", "routes")),
    "requests": ("methods, query strings and paths", ("methods", "query strings", "path encoding")),
    "connections": (
        "bodies, headers, connections and status codes",
        (
            "large bodies",
            "chunked uploads",
            "Expect: 100-continue",
            "HTTP/1.0",
            "keep-alive",
            "large headers",
            "status codes",
        ),
    ),
    "streaming": (
        "streaming, WebSockets, request IDs, multiplexing and errors",
        ("streaming", "WebSockets", "request IDs", "model multiplexing", "errors"),
    ),
    "grpc": ("gRPC", ("gRPC",)),
}
OTHER_PART = ("other", "other groups")


def part_page(group: str) -> str:
    """The file (in REPORT_DIR) holding the answers of a group's cases."""
    part = next((name for name, (_, groups) in PARTS.items() if group in groups), OTHER_PART[0])
    return f"differences-{part}.md"


def _header(title: str) -> list[str]:
    return [
        f"# {title}",
        "",
        "<!-- Written by the differential test (tests/differential) with differences.json;",
        "     do not edit. Classes and reasons live in tests/differential/expectations.yaml. -->",
        "",
    ]


def _case_section(case: dict[str, Any]) -> list[str]:
    out = [f"## {case['name']}", "", f"{case['sends']} ({case['group']}): **{case['class']}**.", ""]
    fields = sorted(set(case[MODES[0]]) | set(case[MODES[1]]))
    out += field_table(case, fields)
    if case["class"] != "same":
        out += [
            "",
            f"Differs in: {', '.join(case['differs'])}. {case.get('reason', '')}",
            "",
            f"Upstream: {upstream_links(case.get('upstream') or [])}.",
        ]
    return [*out, ""]


def render_differences(data: dict[str, Any]) -> str:
    """differences.md: every case, its class and what differs, linked to its answers."""
    out = [
        *_header("HAProxy mode vs Ray's Python proxy: every case"),
        f"The same requests sent through one compose cluster run twice, in HAProxy mode and with "
        f"`RAY_SERVE_ENABLE_HA_PROXY=0`. {versions_line(data)} {summary_line(data)} "
        "The switching guide built from this list: [guide.md](guide.md). Each case links to both "
        "modes' answers.",
        "",
        "| case | group | sends | class | fields that differ |",
        "|---|---|---|---|---|",
    ]
    for case in data["cases"]:
        differs = ", ".join(case["differs"]) or "-"
        out.append(
            f"| [{case['name']}]({part_page(case['group'])}#{case['name']}) | {case['group']} "
            f"| {case['sends']} | {CLASS_TITLES.get(case['class'], case['class'])} | {differs} |"
        )
    return "\n".join(out).rstrip() + "\n"


def render_report(data: dict[str, Any]) -> dict[str, str]:
    """Every markdown file of the report, by name in REPORT_DIR: differences.md and one page of
    both modes' answers per part that has cases."""
    pages: dict[str, list[dict[str, Any]]] = {}
    for case in data["cases"]:
        pages.setdefault(part_page(case["group"]), []).append(case)
    titles = {f"differences-{name}.md": title for name, (title, _) in PARTS.items()}
    titles[f"differences-{OTHER_PART[0]}.md"] = OTHER_PART[1]
    files = {REPORT_MD.name: render_differences(data)}
    for page, cases in pages.items():
        out = [
            *_header(f"Both modes' answers: {titles[page]}"),
            f"{versions_line(data)} Every case: [differences.md](differences.md).",
            "",
        ]
        for case in cases:
            out += _case_section(case)
        files[page] = "\n".join(out).rstrip() + "\n"
    return files


def write_report(data: dict[str, Any]) -> None:
    """Writes the report's markdown files, and removes part pages that no longer have cases."""
    files = render_report(data)
    for stale in REPORT_DIR.glob("differences-*.md"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (REPORT_DIR / name).write_text(text)


def stale_report_files(data: dict[str, Any]) -> list[str]:
    """The committed markdown files of the report that differ from what `data` renders to."""
    files = render_report(data)
    committed = {p.name for p in REPORT_DIR.glob("differences-*.md")} | {REPORT_MD.name}
    return sorted(
        name
        for name in committed | set(files)
        if not (REPORT_DIR / name).exists()
        or name not in files
        or (REPORT_DIR / name).read_text() != files[name]
    )


def grouped(cases: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Cases with the same reason, advice, image note and upstream issues, in first-seen order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for case in cases:
        key = (
            case.get("reason"),
            case.get("advice"),
            case.get("image"),
            tuple(case.get("upstream") or ()),
        )
        groups.setdefault(key, []).append(case)
    return list(groups.values())


def render_guide(data: dict[str, Any]) -> str:
    """guide.md: what changes when switching, what to do, what stays the same."""
    differing = [c for c in data["cases"] if c["class"] in ("defect", "expected")]
    same = [c for c in data["cases"] if c["class"] == "same"]
    out = [
        "# Switching from Ray's Python proxy to HAProxy mode",
        "",
        "<!-- Generated from differences.json by `python tests/differential/report.py --write`;",
        "     do not edit (a unit test compares). -->",
        "",
        "What a client sees differently once `RAY_SERVE_ENABLE_HA_PROXY=1` replaces Ray's Python "
        "proxy, measured, not assumed: the differential test sends the same requests through "
        "both modes of one cluster and classifies every difference "
        f"([every case with both modes' answers](differences.md)). {versions_line(data)} "
        f"{summary_line(data)}",
        "",
        "Before switching, run `ray-serve-haproxy check` with your `RSH_SERVE_CONFIG` and "
        "`RSH_PYTHONPATH`: it names the deployments that rely on something HAProxy mode drops "
        "(the head's start-up log says the same).",
        "",
        "## What changes",
        "",
    ]
    for klass, title, intro in (
        (
            "defect",
            "Defects: HAProxy mode loses something",
            "Ray's HAProxy mode does not (yet) do what the Python proxy does. Until Ray fixes "
            "them, work around them as described.",
        ),
        (
            "expected",
            "Expected differences",
            "Different answers by design, or differences well-behaved clients do not notice. "
            "Check that your clients do not depend on them.",
        ),
    ):
        groups = grouped([c for c in differing if c["class"] == klass])
        out += [f"### {title}", "", intro, ""]
        if not groups:
            out += ["None.", ""]
        for cases in groups:
            first = cases[0]
            out += [f"#### {first['sends']} (`{first['name']}`)", ""]
            if len(cases) > 1:
                others = "; ".join(f"{c['sends']} (`{c['name']}`)" for c in cases[1:])
                out += [f"Also: {others}.", ""]
            out += field_table(first, first["differs"])
            if len(cases) > 1:
                out += [
                    "",
                    "(The first case's answers; all of them in [differences.md](differences.md).)",
                ]
            out += ["", f"**Why:** {first.get('reason', '')}", ""]
            out += [f"**What to do:** {first.get('advice', '')}", ""]
            if first.get("image"):
                out += [f"**What the image does:** {first['image']}", ""]
            out += [f"**Upstream:** {upstream_links(first.get('upstream') or [])}.", ""]
    actions: dict[str, list[str]] = {}
    for case in differing:
        if case.get("image"):
            actions.setdefault(case["image"], []).append(f"`{case['name']}`")
    out += ["## What the image does about it", ""]
    out += [f"- {text} ({', '.join(names)})" for text, names in actions.items()]
    out += [
        "- Serve's HTTP options of `RSH_SERVE_CONFIG` (`request_timeout_s`, "
        "`keep_alive_timeout_s`, `root_path`) reach `serve.start`, in both modes (Serve ignores "
        "them in a later deploy); `request_timeout` above answers alike because of it.",
        "- `RAY_SERVE_ENABLE_HA_PROXY=0` runs the same image, settings and probes with Ray's "
        "Python proxy: the differential test runs the compose cluster that way.",
        "",
        "## What stays the same",
        "",
        "These requests get the same answer in both modes (status, body, the headers clients "
        "read, framing, streaming order and timing class):",
        "",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in same:
        groups.setdefault(case["group"], []).append(case)
    for group, cases in groups.items():
        out.append(f"- **{group}**: " + "; ".join(c["sends"] for c in cases) + ".")
    out += [
        "",
        "## How this list stays true",
        "",
        "`tests/differential` runs in CI (`bash scripts/test.sh`, marker `differential`). "
        "Each difference is listed in `tests/differential/expectations.yaml` with its class, "
        "the fields that differ, the reason and the upstream issue; the test fails when a case "
        "changes class (a new difference, or a known one gone), e.g. after a Ray upgrade. Then "
        "update the expectations, rerun the test (it rewrites differences.json and .md) and "
        "regenerate this guide with `python tests/differential/report.py --write`.",
    ]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--write", action="store_true", help=f"write the markdown of {REPORT_DIR.relative_to(REPO)}"
    )
    mode.add_argument("--check", action="store_true", help="exit 1 if any of it is out of date")
    args = parser.parse_args(argv)
    data = json.loads(REPORT_JSON.read_text())
    guide = render_guide(data)
    if args.write:
        GUIDE_MD.write_text(guide)
        write_report(data)
        print(f"wrote {GUIDE_MD.relative_to(REPO)} and {REPORT_MD.name} with its pages")
        return 0
    stale = stale_report_files(data)
    if not GUIDE_MD.exists() or GUIDE_MD.read_text() != guide:
        stale.append(GUIDE_MD.name)
    if stale:
        print(
            f"out of date in {REPORT_DIR.relative_to(REPO)}: {', '.join(stale)}: run "
            "`python tests/differential/report.py --write`",
            file=sys.stderr,
        )
        return 1
    print(f"{REPORT_DIR.relative_to(REPO)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
