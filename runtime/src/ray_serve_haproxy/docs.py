"""The settings reference (docs/settings.md), generated from the declarations in settings/.

`ray-serve-haproxy settings-table` prints it; `--write docs/settings.md` replaces the block
between the markers; `--check docs/settings.md` exits 1 when the block differs (as the unit test
does). `python -m ray_serve_haproxy.docs` prints it too.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Any

from .settings import Group, Spec, specs

START_MARKER = "<!-- settings-table:start -->"
END_MARKER = "<!-- settings-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_text(spec: Spec[Any]) -> str:
    if spec.derived is not None:
        return f"derived: {spec.derived}"
    if spec.default is None:
        return spec.unset_means or "unset"
    rendered = spec.type.render(spec.default)
    return f"`{rendered}`" if rendered else "empty"


def heading_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, only letters, digits, marks, `_`, `-` and
    spaces kept, each space a `-` (tests/docs/links.py checks every link with the same rule)."""
    kept = (c for c in title.lower() if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return "".join(kept).replace(" ", "-")


def settings_table() -> str:
    """Markdown: a line of links to the groups, then one table (variable, default, allowed,
    description) per group."""
    groups = [g for g in Group if any(spec.group == g for _, spec in specs())]
    links = " · ".join(f"[{g.value}](#{heading_anchor(g.value)})" for g in groups)
    out: list[str] = [f"Groups: {links}.", ""]
    for group in groups:
        group_specs = [spec for _, spec in specs() if spec.group == group]
        out += [f"### {group.value}", ""]
        out += ["| Variable | Default | Allowed | Description |", "|---|---|---|---|"]
        for spec in group_specs:
            cells = [f"`{spec.env}`", default_text(spec), spec.type.allowed, spec.description]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def extract_block(text: str) -> str | None:
    """What lies between the markers (None when they are missing)."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return text[start + len(START_MARKER) : end]


def replace_block(text: str, table: str) -> str:
    if extract_block(text) is None:
        raise ValueError(f"no {START_MARKER} ... {END_MARKER} block")
    start = text.index(START_MARKER) + len(START_MARKER)
    end = text.index(END_MARKER)
    return text[:start] + "\n" + table.strip() + "\n" + text[end:]


def block_matches(text: str, table: str) -> bool:
    block = extract_block(text)
    return block is not None and block.strip() == table.strip()


if __name__ == "__main__":
    sys.stdout.write(settings_table())
