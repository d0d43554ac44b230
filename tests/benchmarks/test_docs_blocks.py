"""The benchmark's numbers in the docs are generated: docs/benchmark.md's tables and the README's
headline must be what benchmarks/results/latest.json renders to, as benchmarks/results/latest.md
is (`python -m benchmarks --render-only benchmarks/results/latest.json` rewrites all of them)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import readme
from benchmarks.report_markdown import render_markdown

pytestmark = pytest.mark.unit

RESULTS = readme.REPO / "benchmarks" / "results"


@pytest.fixture(scope="module")
def latest() -> dict[str, Any]:
    return json.loads((RESULTS / "latest.json").read_text())


def test_committed_docs_match_the_latest_result(latest: dict[str, Any]) -> None:
    assert readme.stale_docs(latest, RESULTS) == [], (
        "the benchmark's blocks in the docs differ from benchmarks/results/latest.json: run "
        "`python -m benchmarks --render-only benchmarks/results/latest.json`"
    )
    assert (RESULTS / "latest.md").read_text() == render_markdown(latest)


def test_headline_holds_the_main_paths_and_ratios(latest: dict[str, Any]) -> None:
    headline = readme.headline_block(latest)
    assert (
        "| HAProxy mode (:8000), access log errors, metrics on | 2,429 | 128.7 | 243 | 0.28 |"
        in (headline)
    )
    assert "| Python proxy (:8000) | 438 | 446.7 | 2,286 | 4.67 |" in headline
    assert "5.5\u00d7 the Python proxy's throughput for 1/9.4 of its CPU" in headline
    assert "Failed requests on every path and level: 0." in headline
    assert len(headline.splitlines()) < 20


def test_a_changed_result_makes_the_docs_stale(latest: dict[str, Any], tmp_path: Path) -> None:
    doc, top = tmp_path / "docs" / "benchmark.md", tmp_path / "README.md"
    out = tmp_path / "benchmarks" / "results"  # where the chart would be
    doc.parent.mkdir()
    doc.write_text(f"# B\n{readme.FULL[0]}\n{readme.FULL[1]}\nend\n")
    top.write_text(f"# R\n{readme.HEADLINE[0]}\n{readme.HEADLINE[1]}\n")
    assert len(readme.stale_docs(latest, out, doc, top)) == 2
    assert readme.update_docs(latest, out, doc, top)
    assert readme.stale_docs(latest, out, doc, top) == []
    assert "](../benchmarks/results/latest.png)" in doc.read_text()  # the chart, from docs/
    assert doc.read_text().endswith("end\n")
    changed = copy.deepcopy(latest)
    changed["results"]["haproxy"]["64"]["summary"]["requests_per_s"]["median"] = 1.0
    assert readme.stale_docs(changed, out, doc, top) == [
        "benchmark.md (<!-- benchmark:start -->)",
        "README.md (<!-- benchmark-headline:start -->)",
    ]
