"""Writes a run's files: <out>/<name>.json, .md and .png; for `latest`, the docs' blocks too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .chart import render_chart
from .readme import update_docs
from .report_markdown import render_markdown
from .shell import log


def write_outputs(data: dict[str, Any], out_dir: Path, *, readme: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = data["name"]
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(render_markdown(data))
    render_chart(data, out_dir / f"{name}.png")
    log(f"wrote {out_dir / name}.json, .md, .png")
    if name == "latest" and readme:
        update_docs(data, out_dir)
