"""The docs page's results table is what report.py makes of the committed results."""

from __future__ import annotations

import json

import pytest

from . import report

pytestmark = pytest.mark.unit


def test_docs_table_matches_the_committed_results() -> None:
    made = report.table(json.loads(report.COMMITTED.read_text()))
    found = report.block(report.PAGE.read_text())
    assert found is not None, f"{report.PAGE} has no {report.START} ... {report.END} block"
    assert found.strip() == made.strip(), (
        "docs/edge-security.md's results table differs from docs/edge-security-results.json: "
        "run `python tests/edge/report.py --write`"
    )


def test_every_attack_has_a_row_and_replace_is_idempotent() -> None:
    results = json.loads(report.COMMITTED.read_text())
    made = report.table(results)
    for attack in results["attacks"]:
        assert f"| {attack['attack']} |" in made
    text = f"intro\n{report.START}\nold\n{report.END}\n"
    once = report.replace(text, made)
    assert report.replace(once, made) == once
    with pytest.raises(ValueError):
        report.replace("no markers", made)
