"""runtime/README.md's module map lists every runtime module with its docstring's first sentence."""

from __future__ import annotations

import pytest

from .module_map import README, current_block, entries, render

pytestmark = pytest.mark.unit


def test_module_map_is_generated_from_the_modules() -> None:
    assert current_block(README.read_text(encoding="utf-8")) == render(), (
        "runtime/README.md's module map is stale: run `python -m tests.docs.module_map --write`"
    )


def test_every_module_has_a_docstring() -> None:
    missing = [name for name, job in entries() if not job]
    assert not missing, f"modules without a docstring: {missing}"
