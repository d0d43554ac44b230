"""Unit tests of the benchmarks package (no Docker): parsers, statistics, CPU accounting,
scoring and the results schema, on outputs recorded from real runs (data/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# `benchmarks` is a package at the repository's root (python -m benchmarks).
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
