"""The runtime's module map (runtime/README.md), generated from each module's docstring.

`python -m tests.docs.module_map --write` rewrites the block between the markers; the test beside
this file fails when a module was added, removed or re-described without it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runtime" / "src" / "ray_serve_haproxy"
README = ROOT / "runtime" / "README.md"
START = "<!-- module-map:start -->"
END = "<!-- module-map:end -->"


def summary(path: Path) -> str:
    """The first sentence of a module's (or package's) docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    first = paragraph.split(". ", 1)[0].rstrip(".")
    return first.replace("|", "\\|")


def entries() -> list[tuple[str, str]]:
    rows = []
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            rows.append((f"{path.name}/", summary(path / "__init__.py")))
        elif path.suffix == ".py" and path.name not in ("__init__.py", "__main__.py"):
            rows.append((path.name, summary(path)))
    return rows


def render() -> str:
    lines = [START, "", "| module | job |", "|---|---|"]
    lines += [f"| `{name}` | {job} |" for name, job in entries()]
    return "\n".join([*lines, "", END])


def current_block(text: str) -> str:
    start = text.index(START)
    return text[start : text.index(END, start) + len(END)]


def write() -> None:
    text = README.read_text(encoding="utf-8")
    README.write_text(text.replace(current_block(text), render()), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(render())
