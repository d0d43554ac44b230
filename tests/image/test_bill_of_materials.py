"""The image's bill of materials: where the label says, and true to what is installed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import ImageRunner

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[2]
SBOM_LABEL = "io.ray-serve-haproxy.sbom"


@pytest.fixture(scope="module")
def bom(image_runner: ImageRunner) -> dict[str, Any]:
    result = image_runner.run(["sbom"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def components(bom: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in bom["components"] if str(c["bom-ref"]).startswith(prefix)}


def test_label_points_to_the_document_sbom_prints(image_runner: ImageRunner) -> None:
    path = image_runner.labels[SBOM_LABEL]
    assert path == "/opt/ray-serve-haproxy/sbom.cdx.json"
    printed = image_runner.run(["sbom"])
    on_disk = image_runner.run(["cat", path])
    assert printed.exit_code == 0 and on_disk.exit_code == 0, printed.output + on_disk.output
    assert printed.output == on_disk.output
    document = json.loads(on_disk.output)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["type"] == "container"


def test_ray_is_listed_with_the_installed_version_and_a_locked_hash(
    image_runner: ImageRunner, bom: dict[str, Any]
) -> None:
    installed = image_runner.run(["ray", "--version"]).output
    version = re.search(r"ray, version (\S+)", installed)
    assert version, installed
    ray = components(bom, "pypi:")["ray"]
    assert ray["version"] == version.group(1)
    assert ray["purl"] == f"pkg:pypi/ray@{version.group(1)}"
    # The wheel pip installed is one the hash-pinned lock allows.
    lock = (REPO / "requirements" / "image.lock").read_text()
    block = re.search(rf"^ray=={re.escape(ray['version'])} \\\n((?:\s+--hash=.*\n)+)", lock, re.M)
    assert block, "ray is not in requirements/image.lock"
    assert f"sha256:{ray['hashes'][0]['content']}" in block.group(1)


def test_every_python_distribution_has_a_version_and_sha256(
    image_runner: ImageRunner, bom: dict[str, Any]
) -> None:
    listed = components(bom, "pypi:")
    freeze = image_runner.run(["/opt/venv/bin/python", "-m", "pip", "list", "--format", "json"])
    assert freeze.exit_code == 0, freeze.output
    installed = {d["name"].lower(): d["version"] for d in json.loads(freeze.output)}
    assert {n.lower(): c["version"] for n, c in listed.items()} == installed
    for name, component in listed.items():
        assert re.fullmatch(r"[0-9a-f]{64}", component["hashes"][0]["content"]), name
    print(f"\n{len(listed)} Python distributions, each with its sha256")


def test_haproxy_is_listed_with_version_build_flags_and_source_sha256(
    image_runner: ImageRunner, bom: dict[str, Any]
) -> None:
    first_line = image_runner.run(["-v"], entrypoint=["/usr/local/bin/haproxy"]).output
    version = re.match(r"HAProxy version (\d+\.\d+\.\d+)", first_line)
    assert version, first_line
    haproxy = next(c for c in bom["components"] if c["bom-ref"] == "haproxy")
    assert haproxy["version"] == version.group(1)
    props = {p["name"].split(":", 1)[1]: p["value"] for p in haproxy["properties"]}
    for feature in ("OPENSSL", "ZLIB", "PCRE", "LUA", "PROMEX"):
        assert f"USE_{feature}=1" in props["build-options"], props
        assert f"+{feature}" in props["features"].split(), props
    table = (REPO / "haproxy" / "checksums.txt").read_text()
    expected = re.search(rf"^{re.escape(version.group(1))} ([0-9a-f]{{64}})$", table, re.M)
    assert expected, f"{version.group(1)} not in haproxy/checksums.txt"
    source = haproxy["externalReferences"][0]
    assert source["type"] == "source-distribution"
    assert source["hashes"][0]["content"] == expected.group(1)
    binary = image_runner.run(["sha256sum", "/usr/local/bin/haproxy"]).output.split()[0]
    assert haproxy["hashes"][0]["content"] == binary


def test_debian_packages_are_listed_as_dpkg_knows_them(
    image_runner: ImageRunner, bom: dict[str, Any]
) -> None:
    query = image_runner.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"])
    assert query.exit_code == 0, query.output
    installed = dict(line.split(" ", 1) for line in query.output.splitlines() if line)
    listed = {name: c["version"] for name, c in components(bom, "deb:").items()}
    assert listed == installed
    assert listed["socat"] == installed["socat"] and "socat" in listed
    socat = components(bom, "deb:")["socat"]
    assert socat["purl"].startswith(f"pkg:deb/debian/socat@{installed['socat']}?arch=")
    print(f"\n{len(listed)} Debian packages; socat {listed['socat']}")


def test_sbom_summary_is_a_table(image_runner: ImageRunner) -> None:
    result = image_runner.run(["sbom", "--summary"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "VERSION", "SHA-256"]
    assert any(line.split()[:2] == ["pypi", "ray"] for line in lines[1:])
    assert any(line.split()[:2] == ["deb", "socat"] for line in lines[1:])
