"""Puts a run's tables and chart into README.md's Performance section, between its markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report_markdown import render_markdown
from .shell import log

README = Path(__file__).resolve().parents[1] / "README.md"
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def readme_block(data: dict[str, Any], out_dir: Path, readme: Path = README) -> str:
    """What goes between the markers: the run's markdown without its heading, the chart linked
    relative to `readme`."""
    body = render_markdown(data).split("\n", 1)[1].strip()  # the section has its own heading
    chart = (out_dir / f"{data['name']}.png").resolve().relative_to(readme.parent.resolve())
    return body.replace(f"]({data['name']}.png)", f"]({chart})")


def published_block(readme: Path = README) -> str | None:
    """What is between the markers in `readme` now (None without markers)."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return None
    return text.split(README_START, 1)[1].split(README_END, 1)[0].strip()


def update_readme(data: dict[str, Any], out_dir: Path, readme: Path = README) -> bool:
    """Replaces the block between the markers; False (nothing written) without markers."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    body = readme_block(data, out_dir, readme)
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}")
    log(f"updated the Performance section of {readme.name}")
    return True
