"""tests/docs/links.py: every relative link and anchor of the repository's Markdown resolves, and
the checker fails on a broken link or anchor (proved on a throwaway git repository)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from . import links

pytestmark = pytest.mark.unit


def test_every_relative_link_and_anchor_resolves() -> None:
    files = links.markdown_files()
    assert Path(links.REPO / "README.md") in files and len(files) >= 20, len(files)
    broken = [str(b) for f in files for b in links.check_file(f)]
    assert not broken, f"{len(broken)} broken link(s):\n" + "\n".join(broken)


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    """A git repository holding `files` (committed or not: the checker sees both)."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


PAGE = """# Title

## Node address and Ray's ports (host networking, firewalls)

## scaling 2 → 3 → 1

## `RSH_ACCESS_LOG` modes

## Twice

## Twice

<a id="old-name"></a>

```bash
see [not a link](missing.md) in a code block
```
"""


def test_good_links_and_anchors_pass(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        {
            "docs/page.md": PAGE,
            "docs/sub/code.py": "",
            "README.md": (
                "[p](docs/page.md)"
                " [h](docs/page.md#node-address-and-rays-ports-host-networking-firewalls)"
                " [a](docs/page.md#scaling-2--3--1) [c](docs/page.md#rsh_access_log-modes)"
                " [d1](docs/page.md#twice) [d2](docs/page.md#twice-1) [o](docs/page.md#old-name)"
                " [dir](docs/sub/) [f](docs/sub/code.py) [self](#title-here) [ref][r]"
                " [web](https://example.com/x#y) `[code](nowhere.md)`\n\n"
                "# Title here\n\n[r]: docs/page.md#title\n"
            ),
        },
    )
    assert [str(b) for b in links.check_file(root / "README.md", root)] == []
    assert links.main([], root) == 0


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("docs/gone.md", "no file docs/gone.md in git"),
        ("docs/page.md#no-such-heading", "no heading or anchor #no-such-heading in docs/page.md"),
        ("#nowhere", "no heading or anchor #nowhere in README.md"),
        ("docs/page.md#twice-2", "no heading or anchor #twice-2 in docs/page.md"),
        ("docs/ignored.md", "no file docs/ignored.md in git"),
        ("../outside.md", "points outside the repository"),
        ("docs/sub/code.py#L1", "an anchor into a file that is not Markdown"),
    ],
)
def test_a_broken_link_or_anchor_fails(tmp_path: Path, link: str, why: str) -> None:
    root = repo(
        tmp_path,
        {
            "docs/page.md": PAGE,
            "docs/sub/code.py": "",
            "docs/ignored.md": "# exists here, but git ignores it\n",
            ".gitignore": "docs/ignored.md\n",
            "README.md": f"# Readme\n\nSee [this]({link}).\n",
        },
    )
    broken = links.check_file(root / "README.md", root)
    assert [(b.file, b.line, b.link, b.why) for b in broken] == [("README.md", 3, link, why)]
    assert links.main([], root) == 1


def test_the_command_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    """What scripts/lint.sh runs: exit 1, the broken link named with its file and line."""
    root = repo(tmp_path, {"docs/page.md": PAGE, "README.md": "# R\n\n[x](docs/page.md#twice-9)\n"})
    command = [sys.executable, str(links.REPO / "tests" / "docs" / "links.py"), "--root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "README.md:3: docs/page.md#twice-9: no heading or anchor #twice-9 in docs/page.md" in (
        done.stdout
    )
    (root / "README.md").write_text("# R\n\n[x](docs/page.md#twice-1)\n")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_github_slugs() -> None:
    assert links.slug("A cluster of machines with docker run") == (
        "a-cluster-of-machines-with-docker-run"
    )
    assert links.slug("What bounds a request's life") == "what-bounds-a-requests-life"
    assert links.slug("GET /api/echo/été") == "get-apiechoété"
    assert links.slug("healthz_before_deploy") == "healthz_before_deploy"
