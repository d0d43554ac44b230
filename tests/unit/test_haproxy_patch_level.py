"""HAProxy's patch level as the image reports it (`check`, `status`, the bill of materials),
read from the record that haproxy/security-floor.sh writes in the build. The records here are
written by that real script from the real floor table."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from ray_serve_haproxy import bill_of_materials as bom
from ray_serve_haproxy import haproxy_patch_level as hpl
from ray_serve_haproxy.env_checks import Level, check_patch_level

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


def record(version: str, directory: Path) -> Path:
    """The build's record for `version`, allowed below the floor the way build-image.sh does."""
    script = REPO / "haproxy" / "security-floor.sh"
    env = {"PATH": os.environ["PATH"]}
    missing = subprocess.run(
        ["sh", str(script), "missing", version], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    if missing:
        env |= {"HAPROXY_ALLOW_BELOW_FLOOR": "1", "HAPROXY_BELOW_FLOOR_MISSING": missing}
    out = directory / f"haproxy-security-{version}.json"
    subprocess.run(
        ["sh", str(script), "check", version, str(out)], capture_output=True, check=True, env=env
    )
    return out


def fake_haproxy(directory: Path, version: str) -> str:
    """An executable that answers `-v` like HAProxy does."""
    path = directory / "haproxy"
    path.write_text(f"#!/bin/sh\necho 'HAProxy version {version}-abc 2026/01/01'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_below_floor_record_is_read_back(tmp_path: Path) -> None:
    level = hpl.load(record("3.0.11", tmp_path))
    assert level is not None
    assert (level.version, level.branch, level.floor) == ("3.0.11", "3.0", "3.0.24")
    assert level.below_floor and level.allowed_below_floor
    assert "CVE-2026-26081" in level.missing_ids
    quic = next(a for a in level.missing if a.id == "CVE-2026-26081")
    assert not quic.reachable and "USE_QUIC" in quic.why_unreachable
    comma = next(a for a in level.missing if a.id == "BUG-MAJOR:http-authority-comma")
    assert comma.reachable


def test_no_record_and_a_broken_record(tmp_path: Path) -> None:
    assert hpl.load(tmp_path / "absent.json") is None
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": "3.0.11"}')
    with pytest.raises(hpl.PatchLevelError, match="no 'branch'"):
        hpl.load(broken)


def test_check_warns_below_the_floor_naming_the_cves(tmp_path: Path) -> None:
    findings = check_patch_level(fake_haproxy(tmp_path, "3.0.11"), str(record("3.0.11", tmp_path)))
    first = findings[0]
    assert first.level == Level.WARN
    text = str(first)
    assert text.startswith("WARN  haproxy security floor: WARNING: HAProxy 3.0.11 is BELOW")
    assert "security floor 3.0.24 of its branch 3.0" in text
    assert "HAPROXY_ALLOW_BELOW_FLOOR=1" in text
    for cve in ("CVE-2025-11230", "CVE-2026-26081", "CVE-2026-33555", "CVE-2026-55204"):
        assert cve in text


def test_check_is_ok_at_the_floor_and_names_fixes_no_release_carries(tmp_path: Path) -> None:
    findings = check_patch_level(fake_haproxy(tmp_path, "2.8.26"), str(record("2.8.26", tmp_path)))
    assert findings[0].level == Level.OK
    assert "HAProxy 2.8.26 is at or above the security floor 2.8.25" in str(findings[0])
    (open_fixes,) = findings[1:]
    assert open_fixes.level == Level.WARN
    assert "BUG-MAJOR:mux-h2-ping-short-read (http2)" in open_fixes.detail
    assert "slz" not in open_fixes.detail  # not built: USE_ZLIB


def test_check_does_not_vouch_for_another_binary(tmp_path: Path) -> None:
    (finding,) = check_patch_level(
        fake_haproxy(tmp_path, "2.8.30"), str(record("2.8.26", tmp_path))
    )
    assert finding.level == Level.WARN
    assert "unknown for" in finding.detail and "is for 2.8.26" in finding.detail


def test_check_without_a_record(tmp_path: Path) -> None:
    (finding,) = check_patch_level(fake_haproxy(tmp_path, "2.8.26"), str(tmp_path / "none"))
    assert finding.level == Level.WARN and "no build record" in finding.detail


def test_status_lines(tmp_path: Path) -> None:
    below = hpl.status_lines(hpl.load(record("3.0.11", tmp_path)))
    assert below[0].startswith("WARNING: HAProxy 3.0.11 is BELOW the security floor 3.0.24")
    assert "CVE-2026-55203" in below[0]
    assert below[1] == f"  see {hpl.DOC}; build 3.0.24 or newer for production"
    fine = hpl.status_lines(hpl.load(record("2.8.26", tmp_path)))
    assert fine[0] == "HAProxy 2.8.26 is at or above the security floor 2.8.25 of its branch 2.8"
    as_json = hpl.status_json(hpl.load(record("3.0.11", tmp_path)))
    assert as_json is not None and as_json["below_floor"] is True
    assert "CVE-2026-26081" in as_json["missing"]


def sbom(level: hpl.PatchLevel) -> dict[str, object]:
    build = bom.parse_haproxy_vv((DATA / "haproxy_vv_3.0.txt").read_text())
    haproxy = bom.haproxy_component(build, "a" * 64, "0" * 64, level)
    image = bom.ImageFacts("ray-serve-haproxy", "1.2", "debian:bookworm-slim", "linux/amd64")
    when = datetime(2026, 12, 7, tzinfo=UTC)
    return bom.build_document(
        image, [], haproxy, [], {"ID": "debian"}, when, hpl.sbom_vulnerabilities(level)
    )


def test_bill_of_materials_lists_what_a_below_floor_build_lacks(tmp_path: Path) -> None:
    level = hpl.load(record("3.0.11", tmp_path))
    assert level is not None
    document = sbom(level)
    error = JsonStrictValidator(SchemaVersion.from_version(bom.SPEC_VERSION)).validate_str(
        json.dumps(document)
    )
    assert error is None, str(error)[:2000]
    haproxy = document["components"][0]  # type: ignore[index]
    props = {p["name"]: p["value"] for p in haproxy["properties"]}
    assert props["ray-serve-haproxy:security-floor"] == "3.0.24"
    assert props["ray-serve-haproxy:below-security-floor"] == "true"
    assert "CVE-2026-55204" in props["ray-serve-haproxy:below-security-floor-missing"]
    vulns = {v["id"]: v for v in document["vulnerabilities"]}  # type: ignore[index]
    assert set(level.missing_ids) | {a.id for a in level.open} == set(vulns)
    hpack = vulns["CVE-2026-55204"]
    assert hpack["affects"] == [{"ref": "haproxy"}]
    assert hpack["ratings"][0]["severity"] == "high"
    assert hpack["analysis"]["state"] == "in_triage"
    assert "below 3.0.24" in hpack["analysis"]["detail"]
    quic = vulns["CVE-2026-26081"]["analysis"]
    assert (quic["state"], quic["justification"]) == ("not_affected", "code_not_present")


def test_bill_of_materials_at_the_floor_lists_only_open_fixes(tmp_path: Path) -> None:
    level = hpl.load(record("2.8.26", tmp_path))
    assert level is not None
    document = sbom(level)
    props = {p["name"]: p["value"] for p in document["components"][0]["properties"]}  # type: ignore[index]
    assert props["ray-serve-haproxy:below-security-floor"] == "false"
    assert "ray-serve-haproxy:below-security-floor-missing" not in props  # empty: left out
    ids = [v["id"] for v in document["vulnerabilities"]]  # type: ignore[index]
    assert ids == [a.id for a in level.open]
