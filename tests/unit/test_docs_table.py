"""The README's settings table is the one generated from settings/."""

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
    replace_block,
    settings_table,
)
from ray_serve_haproxy.settings import specs

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_generated_from_the_code() -> None:
    text = README.read_text()
    if extract_block(text) is None:
        pytest.skip(f"README.md has no {START_MARKER} ... {END_MARKER} block yet")
    up_to_date = block_matches(text, settings_table())
    assert up_to_date, (
        "README.md's settings table differs from the settings code: run "
        "`ray-serve-haproxy settings-table --write README.md`"
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
