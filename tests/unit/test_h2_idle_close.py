"""The launcher's HTTP/2 idle-close edit of Ray's config (h2_idle_close.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray_serve_haproxy.h2_idle_close import TIMEOUT, edit

pytestmark = pytest.mark.unit

RAY_CFG = (Path(__file__).parent / "data" / "ray_haproxy.cfg").read_text()


def section(text: str, header: str) -> list[str]:
    """The lines of the section that starts with `header`, up to the next section."""
    lines = text.split("\n")
    start = lines.index(header)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
        len(lines),
    )
    return lines[start + 1 : end]


def test_the_grpc_frontend_gets_client_fin_and_nothing_else_changes() -> None:
    edited = edit(RAY_CFG)
    assert f"    {TIMEOUT}" in section(edited, "frontend grpc_frontend")
    assert TIMEOUT not in "\n".join(section(edited, "frontend http_frontend"))
    assert TIMEOUT not in "\n".join(section(edited, "defaults"))
    # Exactly one line added, all others as Ray wrote them.
    assert [line for line in edited.split("\n") if TIMEOUT not in line] == RAY_CFG.split("\n")


def test_editing_twice_adds_nothing() -> None:
    once = edit(RAY_CFG)
    assert edit(once) == once


def test_a_frontend_with_its_own_client_fin_is_left_alone() -> None:
    text = "frontend g\n    bind *:9000 proto h2\n    timeout client-fin 30s\n"
    assert edit(text) == text


def test_only_frontends_that_bind_http2() -> None:
    text = (
        "defaults\n    mode http\n"
        "frontend web\n    bind *:8000\n"
        "frontend g\n    bind *:9000 proto h2\n"
        "backend b\n    server s 1.2.3.4:9000 proto h2\n"
    )
    assert edit(text) == text.replace("frontend g\n", f"frontend g\n    {TIMEOUT}\n")
