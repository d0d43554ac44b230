"""The bill of materials from recorded inputs: pip's report, dpkg-query, `haproxy -vv`.

The document is checked against the CycloneDX schema (cyclonedx-python-lib's strict validator)
and every package URL is parsed back with packageurl-python.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from ray_serve_haproxy import bill_of_materials as bom
from ray_serve_haproxy.cli import main

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data"

SOURCE_SHA = "a133e2d550c5fd9a849b5c7ab17bb945bcdad209ca140d41f45ebf31943ae783"
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def test_pip_report_gives_sha256_and_url_in_both_formats() -> None:
    digests = bom.digests_from_pip_report(json.loads((DATA / "pip_report.json").read_text()))
    assert set(digests) == {"jinja2", "markupsafe"}
    assert digests["jinja2"].sha256.startswith("85ece445")  # "hashes" (pip 23.1+)
    assert digests["markupsafe"].sha256.startswith("6da83a08")  # legacy "hash" only
    assert digests["jinja2"].url and digests["jinja2"].url.endswith("jinja2-3.1.6-py3-none-any.whl")


def test_wheel_files_are_hashed_by_distribution_name(tmp_path: Path) -> None:
    wheel = tmp_path / "ray_serve_haproxy-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("ray_serve_haproxy/__init__.py", "")
    digests = bom.digests_from_wheels([wheel])
    assert digests == {
        "ray-serve-haproxy": bom.FileDigest(hashlib.sha256(wheel.read_bytes()).hexdigest())
    }


def test_haproxy_vv_gives_release_build_options_and_enabled_features() -> None:
    build = bom.parse_haproxy_vv((DATA / "haproxy_vv_3.0.txt").read_text())
    assert build.version == "3.0.11" and build.version_string == "3.0.11-9e587df"
    assert build.build_options["TARGET"] == "linux-glibc"
    assert build.build_options["OPTIONS"].split() == [
        "USE_OPENSSL=1",
        "USE_LUA=1",
        "USE_ZLIB=1",
        "USE_PROMEX=1",
        "USE_PCRE=1",
    ]
    assert {"OPENSSL", "ZLIB", "PCRE", "LUA", "PROMEX"} <= set(build.features)
    assert "QUIC" not in build.features  # listed as -QUIC
    other = bom.parse_haproxy_vv((DATA / "haproxy_vv.txt").read_text())
    assert (other.version, other.build_options["CPU"]) == ("2.8.25", "generic")


def test_haproxy_vv_without_a_version_line_is_an_error() -> None:
    with pytest.raises(bom.BillOfMaterialsError, match="HAProxy version"):
        bom.parse_haproxy_vv("something else\n")


def test_sha256sum_line() -> None:
    line = f"{SOURCE_SHA}  /build/src/haproxy-3.0.11.tar.gz\n"
    assert bom.parse_sha256sum(line) == (SOURCE_SHA, "haproxy-3.0.11.tar.gz")
    with pytest.raises(bom.BillOfMaterialsError):
        bom.parse_sha256sum("not a checksum")


def test_dpkg_query_keeps_installed_packages_with_their_source() -> None:
    packages = bom.parse_dpkg_query((DATA / "dpkg_query.txt").read_text())
    names = [p.name for p in packages]
    assert "oldpkg" not in names  # only its config files are left
    assert names == sorted(names)
    libc = next(p for p in packages if p.name == "libc6")  # "libc6:amd64" in dpkg's output
    assert (libc.source, libc.architecture) == ("glibc", "amd64")
    login = next(p for p in packages if p.name == "login")
    assert login.version.startswith("1:")  # an epoch


def document() -> dict[str, Any]:
    digests = bom.digests_from_pip_report(json.loads((DATA / "pip_report.json").read_text()))
    python = bom.python_distributions([("Jinja2", "3.1.6"), ("MarkupSafe", "3.0.4")], digests)
    build = bom.parse_haproxy_vv((DATA / "haproxy_vv_3.0.txt").read_text())
    haproxy = bom.haproxy_component(build, SOURCE_SHA, "0" * 64)
    debian = bom.parse_dpkg_query((DATA / "dpkg_query.txt").read_text())
    image = bom.ImageFacts("ray-serve-haproxy", "1.2", "debian:bookworm-slim", "linux/arm64")
    when = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    os_release = bom.parse_os_release(OS_RELEASE)
    return bom.build_document(image, python, haproxy, debian, os_release, when)


def test_document_is_valid_cyclonedx() -> None:
    doc = document()
    validator = JsonStrictValidator(SchemaVersion.from_version(bom.SPEC_VERSION))
    error = validator.validate_str(json.dumps(doc))
    assert error is None, str(error)[:2000]
    assert doc["metadata"]["timestamp"] == "2026-11-29T12:00:00Z"
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))


def test_every_package_url_parses_back_to_name_and_version() -> None:
    for component in document()["components"]:
        if "purl" not in component:
            continue
        purl = PackageURL.from_string(component["purl"])
        assert purl.version == component["version"], component["purl"]
        assert purl.to_string() == component["purl"], "not in canonical form"
    libc = next(c for c in document()["components"] if c["name"] == "libc6")
    assert libc["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"


def test_haproxy_component_carries_source_and_build() -> None:
    haproxy = document()["components"][0]
    assert (haproxy["name"], haproxy["version"]) == ("haproxy", "3.0.11")
    source = haproxy["externalReferences"][0]
    assert source["url"] == "https://www.haproxy.org/download/3.0/src/haproxy-3.0.11.tar.gz"
    assert source["hashes"] == [{"alg": "SHA-256", "content": SOURCE_SHA}]
    props = {p["name"]: p["value"] for p in haproxy["properties"]}
    assert "USE_PROMEX=1" in props["ray-serve-haproxy:build-options"]
    assert props["ray-serve-haproxy:version-string"] == "3.0.11-9e587df"


def test_same_inputs_same_serial_number() -> None:
    assert document()["serialNumber"] == document()["serialNumber"]


def test_python_distribution_without_any_hash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A distribution nobody can vouch for must stop the build, not slip into the document.
    monkeypatch.setattr(bom, "installed_distributions", lambda _dirs: [("mystery", "1.0")])
    sha_file = tmp_path / "haproxy.sha256"
    sha_file.write_text(f"{SOURCE_SHA}  haproxy-3.0.11.tar.gz\n")
    inputs = bom.GenerateInputs(
        output=tmp_path / "sbom.json",
        image=bom.ImageFacts("ray-serve-haproxy", "dev"),
        pip_reports=[DATA / "pip_report.json"],
        wheel_dirs=[],
        haproxy=Path("/nonexistent/haproxy"),
        haproxy_source_sha256=sha_file,
    )
    with pytest.raises(bom.BillOfMaterialsError, match="mystery"):
        bom.generate(inputs)
    assert not inputs.output.exists()


def test_sbom_command_prints_the_document_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sbom.cdx.json"
    path.write_text(json.dumps(document(), indent=2))
    assert main(["sbom", "--path", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["bomFormat"] == "CycloneDX"
    assert main(["sbom", "--summary", "--path", str(path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["KIND", "NAME", "VERSION", "SHA-256"]
    assert ["haproxy", "haproxy", "3.0.11", "0" * 64] in rows
    assert rows[2][:3] == ["pypi", "Jinja2", "3.1.6"]
    assert ["deb", "socat", "1.7.4.4-2"] in rows


def test_sbom_command_without_a_document_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sbom", "--path", str(tmp_path / "missing.json")]) == 1
    assert "no readable bill of materials" in capsys.readouterr().err
