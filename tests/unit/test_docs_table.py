"""The settings reference (docs/settings.md) is the one generated from settings/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ray_serve_haproxy.cli import main
from ray_serve_haproxy.docs import (
    END_MARKER,
    START_MARKER,
    block_matches,
    extract_block,
    heading_anchor,
    replace_block,
    settings_table,
)
from ray_serve_haproxy.settings import specs

pytestmark = pytest.mark.unit

SETTINGS_DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_settings_reference_is_generated_from_the_code() -> None:
    text = SETTINGS_DOC.read_text()
    assert extract_block(text) is not None, f"docs/settings.md lacks the {START_MARKER} block"
    up_to_date = block_matches(text, settings_table())
    assert up_to_date, (
        "docs/settings.md's settings table differs from the settings code: run "
        "`ray-serve-haproxy settings-table --write docs/settings.md`"
    )


def test_group_links_lead_to_the_group_tables() -> None:
    table = settings_table()
    links = re.findall(r"\]\(#([^)]+)\)", table.splitlines()[0])
    headings = [line[4:] for line in table.splitlines() if line.startswith("### ")]
    assert links == [heading_anchor(h) for h in headings], (links, headings)
    assert heading_anchor("Node address and Ray's ports (host networking, firewalls)") == (
        "node-address-and-rays-ports-host-networking-firewalls"
    )


def test_table_lists_every_setting_once_with_its_default() -> None:
    table = settings_table()
    for _, spec in specs():
        rows = [line for line in table.splitlines() if line.startswith(f"| `{spec.env}` |")]
        assert len(rows) == 1, spec.env
        assert len(re.findall(r"(?<!\\)\|", rows[0])) == 5, rows[0]  # four cells, pipes escaped
    assert "| `RAY_SERVE_HAPROXY_MAXCONN` | `20000` | integer 1-1000000 |" in table
    assert "| `RAY_SERVE_HAPROXY_NBTHREAD` | derived: CPUs available, at most 4 |" in table
    connect = next(line for line in table.splitlines() if "TIMEOUT_CONNECT_S" in line)
    assert "`5`" in connect and "redispatch" in connect  # the deviation and its reason


def test_replace_block_round_trip() -> None:
    text = f"intro\n{START_MARKER}\nold\n{END_MARKER}\noutro\n"
    updated = replace_block(text, settings_table())
    assert updated.startswith("intro\n") and updated.endswith("outro\n")
    assert block_matches(updated, settings_table())
    assert not block_matches(text, settings_table())
    assert replace_block(updated, settings_table()) == updated  # idempotent
    with pytest.raises(ValueError):
        replace_block("no markers", settings_table())


def test_cli_write_and_check(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START_MARKER}\n{END_MARKER}\n")
    assert main(["settings-table", "--check", str(readme)]) == 1
    assert main(["settings-table", "--write", str(readme)]) == 0
    assert main(["settings-table", "--check", str(readme)]) == 0
    assert "RAY_SERVE_HAPROXY_SYSLOG_PORT" in readme.read_text()
