"""The differential test's pure parts: comparing observations, holding them to the committed
expectations, and the markdown built from the report (the committed switching guide must be
what report.py makes of the committed report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from . import corpus, report
from .compare import (
    MODES,
    Expectations,
    check,
    classify,
    differing_fields,
    load_expectations,
    report_data,
)

pytestmark = pytest.mark.unit

CASES = [("a", "g1", "GET /a"), ("b", "g1", "GET /b"), ("c", "g2", "GET /c")]


def observations(**per_case: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {
        mode: {name: pair[i] for name, pair in per_case.items()} for i, mode in enumerate(MODES)
    }


def expectations(tmp_path: Path, text: str) -> Expectations:
    path = tmp_path / "expectations.yaml"
    path.write_text(text)
    return load_expectations(path)


EXPECT_B = """\
cases:
  b:
    class: defect
    fields: [status]
    reason: HAProxy refuses it.
    upstream: ray-project/ray#1
    advice: Do not send it.
"""


def test_differing_fields_counts_missing_keys() -> None:
    assert differing_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == ["b", "c"]
    assert differing_fields({"a": [1]}, {"a": [1]}) == []


def test_expectations_hold(tmp_path: Path) -> None:
    exp = expectations(tmp_path, EXPECT_B)
    obs = observations(a=({"s": 1}, {"s": 1}), b=({"status": 400}, {"status": 200}), c=({}, {}))
    results = classify(CASES, obs, exp)
    assert [r.klass for r in results] == ["same", "defect", "same"]
    assert check(results, exp) == []


def test_a_new_difference_fails(tmp_path: Path) -> None:
    exp = expectations(tmp_path, EXPECT_B)
    obs = observations(a=({"s": 1}, {"s": 2}), b=({"status": 400}, {"status": 200}), c=({}, {}))
    (problem,) = check(classify(CASES, obs, exp), exp)
    assert problem.startswith("a: NEW difference in s:")


def test_a_known_difference_gone_fails(tmp_path: Path) -> None:
    exp = expectations(tmp_path, EXPECT_B)
    obs = observations(a=({}, {}), b=({"status": 200}, {"status": 200}), c=({}, {}))
    assert check(classify(CASES, obs, exp), exp) == [
        "b: known defect GONE: both modes now answer alike"
    ]


def test_a_changed_difference_fails(tmp_path: Path) -> None:
    exp = expectations(tmp_path, EXPECT_B)
    obs = observations(a=({}, {}), b=({"status": 400, "x": 1}, {"status": 200}), c=({}, {}))
    assert check(classify(CASES, obs, exp), exp) == [
        "b: the difference CHANGED: fields ['status'] -> ['status', 'x']"
    ]


def test_malformed_expectations_are_problems(tmp_path: Path) -> None:
    exp = expectations(
        tmp_path,
        "cases:\n  a: {class: bug, fields: [s]}\n  b: {class: expected, fields: [s]}\n"
        "  zz: {class: expected, reason: r, advice: x}\n",
    )
    problems = check(classify(CASES, observations(a=({}, {}), b=({}, {}), c=({}, {})), exp), exp)
    assert "a: class 'bug'; allowed: expected, defect" in problems
    assert "b: no reason" in problems and "b: no advice (what a user should do)" in problems
    assert "zz: in expectations.yaml but not in the corpus" in problems


def test_committed_expectations_name_corpus_cases_with_reasons() -> None:
    exp = load_expectations()
    assert exp.problems == []
    names = {c.name for c in corpus.CASES}
    assert set(exp.by_case) <= names, set(exp.by_case) - names
    for e in exp.by_case.values():
        assert e.fields, f"{e.case}: no fields"
        if e.klass == "defect":
            assert e.advice, e.case


def test_corpus_covers_what_the_issue_lists() -> None:
    groups = {c.group for c in corpus.CASES}
    assert groups >= {
        "routes",
        "methods",
        "query strings",
        "path encoding",
        "large bodies",
        "chunked uploads",
        "Expect: 100-continue",
        "HTTP/1.0",
        "keep-alive",
        "large headers",
        "streaming",
        "WebSockets",
        "request IDs",
        "model multiplexing",
        "errors",
        "health and routes",
        "gRPC",
    }
    assert {c.phase for c in corpus.CASES} == set(corpus.PHASES)


def test_report_markdown_lists_every_case_and_both_modes(tmp_path: Path) -> None:
    exp = expectations(tmp_path, EXPECT_B)
    obs = observations(a=({"s": 1}, {"s": 1}), b=({"status": 400}, {"status": 200}), c=({}, {}))
    data = report_data(classify(CASES, obs, exp), {"ray": "2.60.0", "haproxy": "3.0.11"})
    assert data["summary"] == {"cases": 3, "same": 2, "expected": 0, "defect": 1}
    index = report.render_differences(data)
    for name in ("a", "b", "c"):
        assert f"| [{name}](differences-other.md#{name}) | g" in index
    pages = report.render_report(data)
    assert set(pages) == {"differences.md", "differences-other.md"}
    md = pages["differences-other.md"]
    for name in ("a", "b", "c"):
        assert f"\n## {name}\n" in md
    assert "| status | `400` | `200` |" in md
    assert "[ray-project/ray#1](https://github.com/ray-project/ray/issues/1)" in md
    guide = report.render_guide(data)
    assert "#### GET /b (`b`)" in guide and "**What to do:** Do not send it." in guide
    assert "- **g1**: GET /a." in guide and "- **g2**: GET /c." in guide


def test_committed_guide_matches_committed_report() -> None:
    """Like the README's settings table: regenerate with `python tests/differential/report.py
    --write` after the differential test rewrote the report."""
    data = json.loads(report.REPORT_JSON.read_text())
    assert report.GUIDE_MD.read_text() == report.render_guide(data), (
        "docs/switching/guide.md is out of date: run `python tests/differential/report.py --write`"
    )
    assert report.main(["--check"]) == 0


def test_committed_report_pages_match_committed_report() -> None:
    data = json.loads(report.REPORT_JSON.read_text())
    assert report.stale_report_files(data) == [], (
        "docs/switching/differences*.md are out of date: run "
        "`python tests/differential/report.py --write`"
    )


def test_every_group_has_its_part_page() -> None:
    """A new group of cases must be placed on a part page (else it lands on `other`)."""
    groups = {c.group for c in corpus.CASES}
    placed = {g for _, (_, part) in report.PARTS.items() for g in part}
    assert groups <= placed, groups - placed
    assert report.part_page("gRPC") == "differences-grpc.md"
    assert report.part_page("something new") == "differences-other.md"


def test_committed_report_is_classified() -> None:
    data = json.loads(report.REPORT_JSON.read_text())
    assert {c["name"] for c in data["cases"]} == {c.name for c in corpus.CASES}
    for case in data["cases"]:
        assert case["class"] in ("same", "expected", "defect"), case["name"]
        if case["class"] != "same":
            assert case["reason"] and case["advice"] and case["differs"], case["name"]


def test_field_table_shows_only_the_differing_keys_of_json_bodies() -> None:
    case = {
        "haproxy": {"body": {"a": 1, "same": "x", "h": {"connection": ["keep-alive"]}}},
        "python_proxy": {"body": {"a": 2, "same": "x", "h": {}}},
    }
    assert report.field_table(case, ["body"])[2:] == [
        "| body.a | `1` | `2` |",
        '| body.h | `{"connection": ["keep-alive"]}` | `{}` |',
    ]
