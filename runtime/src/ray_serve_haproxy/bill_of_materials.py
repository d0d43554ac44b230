"""The image's bill of materials: one CycloneDX 1.6 JSON document, written at build time, offline.

Everything it lists comes from files and programs already in the build, never from the network:
- Python distributions: what is installed in the venv (importlib.metadata), each with the sha256
  and URL of the file pip installed (pip's `--report`) or the sha256 of a local wheel file
  (the runtime's own wheel, the pip that `python3 -m venv` bundles).
- HAProxy: `haproxy -vv` (version, TARGET, OPTIONS, CFLAGS, feature list) and the sha256 of the
  source tarball that the build verified against haproxy/checksums.txt; its patch level against
  the security floor (haproxy_patch_level): properties of the component, and a `vulnerabilities`
  entry for each known fix it lacks (a build allowed below the floor) or no release carried yet.
- Debian packages: dpkg's database (`dpkg-query`), and the distribution from /etc/os-release.

`ray-serve-haproxy sbom` prints the document the build wrote (SBOM_PATH).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sysconfig
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import haproxy_patch_level

SBOM_PATH = "/opt/ray-serve-haproxy/sbom.cdx.json"
SPEC_VERSION = "1.6"
PROPERTY_PREFIX = "ray-serve-haproxy"
# Upstream's release tarball; Debian's haproxy_<version>.orig.tar.gz is the same file.
HAPROXY_SOURCE_URL = "https://www.haproxy.org/download/{minor}/src/haproxy-{version}.tar.gz"
DPKG_FORMAT = (
    "${binary:Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t"
    "${source:Version}\\t${db:Status-Status}\\n"
)

Json = dict[str, Any]


class BillOfMaterialsError(Exception):
    """An input the document needs is missing or unreadable."""


# --- Python ---------------------------------------------------------------------------------


def normalize_name(name: str) -> str:
    """PEP 503 normalized distribution name (also the purl's pypi name)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class FileDigest:
    """Where one installed distribution came from: the file's sha256 and, if known, its URL."""

    sha256: str
    url: str | None = None


def digests_from_pip_report(report: Mapping[str, Any]) -> dict[str, FileDigest]:
    """Normalized name -> digest, from `pip install --report` (format version 1)."""
    found: dict[str, FileDigest] = {}
    for item in report.get("install", []):
        name = item.get("metadata", {}).get("name")
        info = item.get("download_info") or {}
        archive = info.get("archive_info") or {}
        sha256 = (archive.get("hashes") or {}).get("sha256")
        legacy = archive.get("hash", "")
        if not sha256 and legacy.startswith("sha256="):
            sha256 = legacy.removeprefix("sha256=")
        if name and sha256:
            found[normalize_name(name)] = FileDigest(sha256, info.get("url"))
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def digests_from_wheels(paths: Iterable[Path]) -> dict[str, FileDigest]:
    """Normalized name -> digest of local wheel files (name-version-tags.whl)."""
    return {normalize_name(p.name.split("-", 1)[0]): FileDigest(sha256_of(p)) for p in paths}


@dataclass(frozen=True)
class PythonDistribution:
    name: str
    version: str
    digest: FileDigest | None = None


def installed_distributions(site_dirs: Sequence[str]) -> list[tuple[str, str]]:
    """(name, version) of every distribution in the given site-packages directories."""
    seen: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions(path=list(site_dirs)):
        name = dist.metadata["Name"]
        if name:
            seen.setdefault(normalize_name(name), (name, dist.version))
    return sorted(seen.values(), key=lambda nv: normalize_name(nv[0]))


def python_distributions(
    installed: Iterable[tuple[str, str]], digests: Mapping[str, FileDigest]
) -> list[PythonDistribution]:
    return [
        PythonDistribution(name, version, digests.get(normalize_name(name)))
        for name, version in installed
    ]


# --- HAProxy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HAProxyBuild:
    version: str  # the release, e.g. 3.0.11
    version_string: str  # as `haproxy -v` prints it, e.g. 3.0.11-9e587df
    build_options: dict[str, str] = field(default_factory=dict)  # TARGET, CC, CFLAGS, OPTIONS...
    features: tuple[str, ...] = ()  # enabled (+) features


def parse_haproxy_vv(text: str) -> HAProxyBuild:
    first = re.search(r"^HAProxy version (\S+)", text, re.M)
    if not first:
        raise BillOfMaterialsError("no 'HAProxy version' line in `haproxy -vv`")
    version_string = first.group(1)
    options: dict[str, str] = {}
    block = re.search(r"^Build options :\n((?:[ \t]+.*\n?)*)", text, re.M)
    for line in (block.group(1) if block else "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            options[key.strip()] = value.strip()
    features_line = re.search(r"^Feature list : (.*)$", text, re.M)
    words = (features_line.group(1) if features_line else "").split()
    features = tuple(word[1:] for word in words if word.startswith("+"))
    return HAProxyBuild(version_string.split("-", 1)[0], version_string, options, features)


def parse_sha256sum(text: str) -> tuple[str, str]:
    """(sha256, file name) from one `sha256sum FILE` line."""
    match = re.match(r"^([0-9a-f]{64})\s+\*?(\S+)", text.strip())
    if not match:
        raise BillOfMaterialsError(f"not a sha256sum line: {text.strip()[:100]!r}")
    return match.group(1), os.path.basename(match.group(2))


# --- Debian ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str
    source: str
    source_version: str


def parse_dpkg_query(text: str) -> list[DebianPackage]:
    """Installed packages from `dpkg-query -W -f DPKG_FORMAT`."""
    packages = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 6 or fields[5] != "installed":
            continue
        name, version, arch, source, source_version, _ = fields
        packages.append(
            DebianPackage(name.split(":", 1)[0], version, arch, source or name, source_version)
        )
    return sorted(packages, key=lambda p: (p.name, p.architecture))


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


# --- CycloneDX ------------------------------------------------------------------------------


def _props(**values: str) -> list[Json]:
    return [
        {"name": f"{PROPERTY_PREFIX}:{key.replace('_', '-')}", "value": value}
        for key, value in values.items()
        if value
    ]


def purl_version(version: str) -> str:
    """A version as a package URL writes it: '+' and the like percent-encoded, ':' kept."""
    return quote(version, safe=".-_~:")


def _sha256(value: str) -> list[Json]:
    return [{"alg": "SHA-256", "content": value}]


def python_component(dist: PythonDistribution) -> Json:
    name = normalize_name(dist.name)
    component: Json = {
        "type": "library",
        "bom-ref": f"pypi:{name}",
        "name": dist.name,
        "version": dist.version,
        "purl": f"pkg:pypi/{name}@{purl_version(dist.version)}",
    }
    if dist.digest:
        component["hashes"] = _sha256(dist.digest.sha256)
        if dist.digest.url and not dist.digest.url.startswith("file:"):
            component["externalReferences"] = [
                {"type": "distribution", "url": dist.digest.url, "hashes": component["hashes"]}
            ]
    return component


def haproxy_component(
    build: HAProxyBuild,
    source_sha256: str,
    binary_sha256: str,
    patch_level: haproxy_patch_level.PatchLevel | None = None,
) -> Json:
    minor = ".".join(build.version.split(".")[:2])
    source_url = HAPROXY_SOURCE_URL.format(minor=minor, version=build.version)
    options = build.build_options
    return {
        "type": "application",
        "bom-ref": "haproxy",
        "name": "haproxy",
        "version": build.version,
        "description": "built from the verified upstream source tarball; debug info stripped",
        "hashes": _sha256(binary_sha256),
        "purl": f"pkg:generic/haproxy@{build.version}?download_url={quote(source_url, safe=':/')}",
        "externalReferences": [
            {"type": "source-distribution", "url": source_url, "hashes": _sha256(source_sha256)},
            {"type": "website", "url": "https://www.haproxy.org/"},
        ],
        "properties": _props(
            version_string=build.version_string,
            build_target=options.get("TARGET", ""),
            build_cpu=options.get("CPU", ""),
            build_cc=options.get("CC", ""),
            build_cflags=options.get("CFLAGS", ""),
            build_options=options.get("OPTIONS", ""),
            build_debug=options.get("DEBUG", ""),
            features=" ".join(f"+{f}" for f in build.features),
            source_sha256=source_sha256,
            **(haproxy_patch_level.sbom_properties(patch_level) if patch_level else {}),
        ),
    }


def debian_component(package: DebianPackage, distro: str) -> Json:
    version = purl_version(package.version)
    return {
        "type": "library",
        "bom-ref": f"deb:{package.name}:{package.architecture}",
        "name": package.name,
        "version": package.version,
        "purl": f"pkg:deb/debian/{package.name}@{version}?arch={package.architecture}"
        + (f"&distro={distro}" if distro else ""),
        "properties": _props(source_package=package.source, source_version=package.source_version),
    }


def operating_system_component(os_release: Mapping[str, str]) -> Json:
    return {
        "type": "operating-system",
        "bom-ref": "os",
        "name": os_release.get("ID", "linux"),
        "version": os_release.get("VERSION_ID", ""),
        "description": os_release.get("PRETTY_NAME", ""),
    }


@dataclass(frozen=True)
class ImageFacts:
    name: str
    version: str
    base_image: str = ""
    platform: str = ""
    tool_version: str = ""


def build_document(
    image: ImageFacts,
    python: Sequence[PythonDistribution],
    haproxy: Json,
    debian: Sequence[DebianPackage],
    os_release: Mapping[str, str],
    timestamp: datetime,
    vulnerabilities: Sequence[Json] = (),
) -> Json:
    distro = f"{os_release.get('ID', '')}-{os_release.get('VERSION_ID', '')}".strip("-")
    components = [
        haproxy,
        *(python_component(d) for d in python),
        operating_system_component(os_release),
        *(debian_component(p, distro) for p in debian),
    ]
    # Same content, same serial number: rebuilding an unchanged image gives the same document.
    content = json.dumps(
        [image.__dict__, components, *([list(vulnerabilities)] if vulnerabilities else [])],
        sort_keys=True,
    )
    serial = uuid.uuid5(uuid.NAMESPACE_URL, content)
    return {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "ray-serve-haproxy sbom-generate",
                        "version": image.tool_version or "unknown",
                    }
                ]
            },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": image.name,
                "version": image.version,
                "properties": _props(base_image=image.base_image, platform=image.platform),
            },
        },
        "components": components,
        **({"vulnerabilities": list(vulnerabilities)} if vulnerabilities else {}),
    }


# --- build time: gather the inputs from this machine -----------------------------------------


def _run(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BillOfMaterialsError(f"`{' '.join(argv)}` failed: {exc}") from exc


def site_directories() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _timestamp() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else datetime.now(UTC)


@dataclass(frozen=True)
class GenerateInputs:
    output: Path
    image: ImageFacts
    pip_reports: Sequence[Path]
    wheel_dirs: Sequence[Path]
    haproxy: Path
    haproxy_source_sha256: Path
    haproxy_security: Path | None = None  # the patch level the build wrote (security floor)
    os_release: Path = Path("/etc/os-release")


def generate(inputs: GenerateInputs) -> Json:
    """Gathers every input, writes the document to inputs.output, and returns it."""
    digests: dict[str, FileDigest] = {}
    for directory in inputs.wheel_dirs:
        digests.update(digests_from_wheels(sorted(directory.glob("*.whl"))))
    for report in inputs.pip_reports:
        try:
            digests.update(digests_from_pip_report(json.loads(report.read_text())))
        except (OSError, ValueError) as exc:
            raise BillOfMaterialsError(f"cannot read pip report {report}: {exc}") from exc
    python = python_distributions(installed_distributions(site_directories()), digests)
    unhashed = [d.name for d in python if d.digest is None]
    if unhashed:
        raise BillOfMaterialsError(f"no sha256 for installed distributions: {unhashed}")
    try:
        source_sha256, _ = parse_sha256sum(inputs.haproxy_source_sha256.read_text())
        os_release = parse_os_release(inputs.os_release.read_text())
    except OSError as exc:
        raise BillOfMaterialsError(str(exc)) from exc
    build = parse_haproxy_vv(_run([str(inputs.haproxy), "-vv"]))
    patch_level = None
    if inputs.haproxy_security is not None:
        try:
            patch_level = haproxy_patch_level.load(inputs.haproxy_security)
        except haproxy_patch_level.PatchLevelError as exc:
            raise BillOfMaterialsError(str(exc)) from exc
        if patch_level is None:
            raise BillOfMaterialsError(f"no HAProxy patch level at {inputs.haproxy_security}")
        if patch_level.version != build.version:
            raise BillOfMaterialsError(
                f"patch level is for HAProxy {patch_level.version}, the binary is {build.version}"
            )
    haproxy = haproxy_component(build, source_sha256, sha256_of(inputs.haproxy), patch_level)
    vulnerabilities = haproxy_patch_level.sbom_vulnerabilities(patch_level) if patch_level else []
    debian = parse_dpkg_query(_run(["dpkg-query", "-W", "-f", DPKG_FORMAT]))
    document = build_document(
        inputs.image, python, haproxy, debian, os_release, _timestamp(), vulnerabilities
    )
    inputs.output.parent.mkdir(parents=True, exist_ok=True)
    inputs.output.write_text(json.dumps(document, indent=2) + "\n")
    return document


# --- run time -------------------------------------------------------------------------------


def summary_rows(document: Mapping[str, Any]) -> list[list[str]]:
    """TYPE / NAME / VERSION / SHA-256 rows: HAProxy, Python, then Debian packages."""
    rows = []
    for component in document.get("components", []):
        ref = str(component.get("bom-ref", ""))
        kind = ref.split(":", 1)[0]  # pypi, deb, or the ref itself: haproxy, os
        sha256 = (component.get("hashes") or [{}])[0].get("content", "")
        rows.append([kind, component.get("name", ""), component.get("version", ""), sha256])
    return rows
