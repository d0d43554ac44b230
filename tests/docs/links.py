"""Checks every relative link and anchor of the repository's Markdown, as GitHub renders it.

    python tests/docs/links.py              # every *.md git knows (tracked or not ignored)
    python tests/docs/links.py FILE.md ...  # only these
    python tests/docs/links.py --root DIR   # another git repository's *.md

Parses with markdown-it-py (CommonMark plus tables), so links in code blocks and code spans are
not links, and reference-style links are resolved as GitHub does. For each link, image or HTML
`href`/`src` without a scheme: the target must be a file git tracks (or a directory holding one)
inside the repository, and a `#fragment` must name a heading of the target Markdown file (GitHub's
slugs, duplicates numbered -1, -2, ...) or an explicit `<a id="...">`/`name=`. Prints one line per
broken link (file:line: link: why) and exits 1 if there is any.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

REPO = Path(__file__).resolve().parents[2]
_PARSER = MarkdownIt("commonmark").enable("table")
_HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.I)
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


@dataclass(frozen=True)
class Broken:
    file: str  # relative to the repository
    line: int
    link: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.link}: {self.why}"


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case; letters, digits, marks, `_`, `-` and spaces kept,
    everything else dropped; each space becomes `-` (so "a → b" gives "a--b")."""
    kept = (
        ch for ch in text.lower() if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N", "M")
    )
    return "".join(kept).replace(" ", "-")


def _inline_text(token: Token) -> str:
    """A heading's text as GitHub slugs it: text and code spans, without markup or HTML."""
    return "".join(
        child.content for child in token.children or [] if child.type in ("text", "code_inline")
    )


def _walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for token in tokens:
        out.append(token)
        if token.children:
            out.extend(_walk(token.children))
    return out


def _tokens(path: Path) -> list[Token]:
    return _PARSER.parse(path.read_text(encoding="utf-8"))


def anchors(path: Path) -> frozenset[str]:
    """Every fragment that lands somewhere in a Markdown file."""
    return _anchors(path.read_text(encoding="utf-8"))


@cache
def _anchors(text: str) -> frozenset[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    tokens = _PARSER.parse(text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            base = slug(_inline_text(tokens[i + 1]))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    for token in _walk(tokens):
        if token.type in ("html_inline", "html_block"):
            found.update(_HTML_ANCHOR.findall(token.content))
    return frozenset(found)


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link, image and HTML href/src of a Markdown file."""
    out: list[tuple[int, str]] = []
    line = 0
    for token in _walk(_tokens(path)):
        if token.map:
            line = token.map[0] + 1
        if token.type == "link_open":
            out.append((line, str(token.attrs.get("href", ""))))
        elif token.type == "image":
            out.append((line, str(token.attrs.get("src", ""))))
        elif token.type in ("html_inline", "html_block"):
            out += [(line, href) for href in _HTML_LINK.findall(token.content)]
    return out


@cache
def tracked(root: Path = REPO) -> frozenset[Path]:
    """Files git knows: tracked, or new and not ignored (as in a commit about to be made), so a
    link to a file that exists only here, or only because it is ignored, fails as it would in CI."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return frozenset(root / name for name in listed.split("\0") if name)


def _exists(target: Path, root: Path) -> bool:
    files = tracked(root)
    if target in files:
        return target.is_file()
    return target.is_dir() and any(target in f.parents for f in files)


def check_link(source: Path, line: int, link: str, root: Path = REPO) -> Broken | None:
    def broken(why: str) -> Broken:
        return Broken(str(source.relative_to(root)), line, link, why)

    if not link or _SCHEME.match(link):
        return None  # external (http:, mailto:, ...): not this checker's job
    raw_path, _, fragment = link.partition("#")
    target = (source.parent / unquote(raw_path)).resolve() if raw_path else source
    if root not in target.parents and target != root:
        return broken("points outside the repository")
    if not _exists(target, root):
        return broken(f"no file {target.relative_to(root)} in git")
    if not fragment:
        return None
    if target.suffix != ".md":
        return broken("an anchor into a file that is not Markdown")
    if unquote(fragment) not in anchors(target):
        return broken(f"no heading or anchor #{fragment} in {target.relative_to(root)}")
    return None


def check_file(path: Path, root: Path = REPO) -> list[Broken]:
    path = path.resolve()
    found = (check_link(path, line, link, root) for line, link in links(path))
    return [b for b in found if b is not None]


def markdown_files(root: Path = REPO) -> list[Path]:
    return sorted(p for p in tracked(root) if p.suffix == ".md" and p.is_file())


def main(argv: list[str], root: Path = REPO) -> int:
    files = [Path(a).resolve() for a in argv] or markdown_files(root)
    broken = [b for f in files for b in check_file(f, root)]
    for b in broken:
        print(b)
    count = sum(len(links(f)) for f in files)
    print(f"docs links: {len(files)} files, {count} links and anchors, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--root"]:  # another repository (the tests' throwaway ones)
        sys.exit(main(args[2:], Path(args[1]).resolve()))
    sys.exit(main(args))
