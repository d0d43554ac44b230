#!/usr/bin/env python3
"""Kept for `python benchmarks/run.py ...`: the benchmark is the `benchmarks` package
(`python -m benchmarks`, which scripts/benchmark.sh runs)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cli import entry

entry()
