"""The HAProxy tarball is checked against haproxy/checksums.txt before anything is built.

The script tests run the verifier directly; the docker tests run the real build
(stage haproxy-builder) and show that a tampered tarball or an unknown version
stops it with a message that says which.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERIFY = REPO / "haproxy" / "verify-tarball.sh"
KNOWN_VERSION = "3.0.11"  # the version whose source these machines can fetch


def known_versions() -> dict[str, str]:
    table = (REPO / "haproxy" / "checksums.txt").read_text().splitlines()
    rows = [line.split() for line in table if line.strip() and not line.startswith("#")]
    return {version: digest for version, digest in rows}


@pytest.fixture(scope="module")
def real_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = REPO / ".cache" / "haproxy-src"
    subprocess.run(
        ["bash", str(REPO / "scripts" / "fetch-haproxy-source.sh"), KNOWN_VERSION, str(cache)],
        check=True,
    )
    return cache / f"haproxy-{KNOWN_VERSION}.tar.gz"


def tampered_copy(tarball: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / tarball.name
    shutil.copyfile(tarball, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    copy.write_bytes(bytes(data))
    return copy


def verify(version: str, tarball: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(VERIFY), version, str(tarball)], capture_output=True, text=True
    )


@pytest.mark.unit
def test_table_has_the_default_and_the_offline_version() -> None:
    versions = known_versions()
    assert "2.8.26" in versions and KNOWN_VERSION in versions
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in versions.values())


@pytest.mark.unit
def test_verifier_accepts_the_real_tarball(real_tarball: Path) -> None:
    result = verify(KNOWN_VERSION, real_tarball)
    assert result.returncode == 0, result.stderr
    assert known_versions()[KNOWN_VERSION] in result.stdout


@pytest.mark.unit
def test_verifier_rejects_one_changed_byte(real_tarball: Path, tmp_path: Path) -> None:
    result = verify(KNOWN_VERSION, tampered_copy(real_tarball, tmp_path))
    assert result.returncode != 0
    assert f"checksum mismatch for HAProxy {KNOWN_VERSION}" in result.stderr
    assert known_versions()[KNOWN_VERSION] in result.stderr  # says what was expected


@pytest.mark.unit
def test_verifier_rejects_an_unknown_version(real_tarball: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "haproxy-2.8.99.tar.gz"
    shutil.copyfile(real_tarball, renamed)
    result = verify("2.8.99", renamed)
    assert result.returncode != 0
    assert "HAProxy version '2.8.99' has no known sha256" in result.stderr


def floor_allowance(version: str) -> list[str]:
    """Build arguments that allow `version` below its security floor (tests/build/
    test_security_floor.py covers the floor): these tests are about the checksum."""
    missing = subprocess.run(
        ["sh", str(REPO / "haproxy" / "security-floor.sh"), "missing", version],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not missing:
        return []
    return [
        "--build-arg",
        "HAPROXY_ALLOW_BELOW_FLOOR=1",
        "--build-arg",
        f"HAPROXY_BELOW_FLOOR_MISSING={missing}",
    ]


def docker_build_haproxy(version: str, source_dir: Path) -> subprocess.CompletedProcess[str]:
    """Runs the real Dockerfile's HAProxy build stage on a given source directory."""
    base = subprocess.run(
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
    return subprocess.run(
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
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"HAPROXY_VERSION={version}",
            *floor_allowance(version),
            "--build-context",
            f"haproxy-src={source_dir}",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.image
def test_build_fails_on_a_changed_byte(real_tarball: Path, tmp_path: Path) -> None:
    tampered_copy(real_tarball, tmp_path / "src")
    result = docker_build_haproxy(KNOWN_VERSION, tmp_path / "src")
    assert result.returncode != 0
    assert f"checksum mismatch for HAProxy {KNOWN_VERSION}" in result.stderr, result.stderr[-3000:]


@pytest.mark.image
def test_build_fails_on_an_unknown_version(real_tarball: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    shutil.copyfile(real_tarball, tmp_path / "src" / "haproxy-2.8.99.tar.gz")
    result = docker_build_haproxy("2.8.99", tmp_path / "src")
    assert result.returncode != 0
    assert "HAProxy version '2.8.99' has no known sha256" in result.stderr, result.stderr[-3000:]
