"""Differential test: the same corpus through HAProxy mode and through Ray's Python proxy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.differential]

REPO = Path(__file__).resolve().parents[2]


def test_dump(differential: dict[str, Any]) -> None:
    out = REPO / ".cache" / "diff-observations.json"
    out.write_text(json.dumps(differential, indent=1, sort_keys=True))
    print(out)
