"""The docs' shape: a short README with the two commands CI and users rely on, pages that stay
small, and no page under docs/ that the README's map does not lead to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import links

pytestmark = pytest.mark.unit

REPO = links.REPO
README = REPO / "README.md"
README_MAX_LINES = 300
PAGE_MAX_LINES = 700
MAIN_COMMAND = "bash scripts/cluster-up.sh"
TEST_COMMAND = "bash scripts/test.sh"


def docs_pages() -> list[Path]:
    return [p for p in links.markdown_files() if REPO / "docs" in p.parents]


def test_readme_is_a_landing_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_no_page_is_too_long() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in docs_pages()
        if (n := len(p.read_text().splitlines())) > PAGE_MAX_LINES
    }
    assert not long, f"pages over {PAGE_MAX_LINES} lines: {long}"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    commands = [line.strip() for block in blocks for line in block.splitlines()]
    assert MAIN_COMMAND in commands and TEST_COMMAND in commands, commands
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert TEST_COMMAND in [line.strip() for line in ci], "the README's test command left .ci/run"


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    """Following relative links from README.md reaches every page under docs/."""
    seen, todo = {README}, [README]
    while todo:
        page = todo.pop()
        for _, link in links.links(page):
            path = link.partition("#")[0]
            if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path):
                continue
            target = (page.parent / path).resolve()
            if target.suffix == ".md" and target not in seen and target.is_file():
                seen.add(target)
                todo.append(target)
    unreachable = sorted(str(p.relative_to(REPO)) for p in docs_pages() if p not in seen)
    assert not unreachable, f"no link from the README leads to {unreachable}"
