"""`python -m benchmarks`: the same as scripts/benchmark.sh runs."""

from .cli import entry

entry()
