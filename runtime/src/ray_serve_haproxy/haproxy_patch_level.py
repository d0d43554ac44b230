"""HAProxy's patch level against its branch's security floor, as the image build found it.

The build (haproxy/security-floor.sh, stage haproxy-builder) writes SECURITY_PATH: the version,
its branch's floor, the known fixes the version lacks (`missing`, only in a build allowed below
the floor with HAPROXY_ALLOW_BELOW_FLOOR=1) and the fixes no release was known to carry when the
floor table was written (`open`). `check`, `status` and the bill of materials report it from this
file, never from the network: what they say is what the image was built with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECURITY_PATH = "/opt/ray-serve-haproxy/haproxy-security.json"
DOC = "docs/haproxy-patch-level.md"

# Where a fix's code runs, and whether this image runs it (haproxy/security-floor.txt, "reach").
NOT_IN_THIS_BUILD = {
    "quic": "HAProxy is built without USE_QUIC",
    "slz": "HAProxy is built with USE_ZLIB, not SLZ",
}
NOT_CONFIGURED = {
    "fcgi": "no FastCGI backend is configured",
    "mjson": "the json_query converter is not configured",
    "regsub": "the regsub converter is not configured",
}


class PatchLevelError(Exception):
    """The file is there but cannot be read as a patch level."""


@dataclass(frozen=True)
class Advisory:
    id: str
    fixed_in: str
    severity: str
    basis: str
    reach: str
    summary: str
    source: str

    @property
    def reachable(self) -> bool:
        """False when this image never runs the affected code (not built, not configured)."""
        return self.reach not in NOT_IN_THIS_BUILD and self.reach not in NOT_CONFIGURED

    @property
    def why_unreachable(self) -> str:
        return NOT_IN_THIS_BUILD.get(self.reach) or NOT_CONFIGURED.get(self.reach, "")


@dataclass(frozen=True)
class PatchLevel:
    version: str
    branch: str
    floor: str
    below_floor: bool
    allowed_below_floor: bool
    missing: tuple[Advisory, ...]
    open: tuple[Advisory, ...]

    @property
    def missing_ids(self) -> list[str]:
        return [a.id for a in self.missing]

    def headline(self) -> str:
        if self.below_floor:
            return (
                f"HAProxy {self.version} is BELOW the security floor {self.floor} of its branch "
                f"{self.branch} (built with HAPROXY_ALLOW_BELOW_FLOOR=1); it lacks "
                f"{len(self.missing)} known fix(es): {', '.join(self.missing_ids)}"
            )
        return (
            f"HAProxy {self.version} is at or above the security floor {self.floor} of its "
            f"branch {self.branch}"
        )

    def open_line(self) -> str:
        """The fixes no upstream release was known to carry, reachable ones first."""
        if not self.open:
            return ""
        named = [
            f"{a.id} ({a.reach})" if a.reachable else f"{a.id} (not run: {a.why_unreachable})"
            for a in sorted(self.open, key=lambda a: not a.reachable)
        ]
        return "no upstream release was known to carry: " + ", ".join(named)


def _advisories(items: object, key: str) -> tuple[Advisory, ...]:
    if not isinstance(items, list):
        raise PatchLevelError(f"'{key}' is not a list")
    try:
        return tuple(
            Advisory(
                id=str(i["id"]),
                fixed_in=str(i["fixed_in"]),
                severity=str(i["severity"]),
                basis=str(i["basis"]),
                reach=str(i["reach"]),
                summary=str(i["summary"]),
                source=str(i["source"]),
            )
            for i in items
        )
    except (KeyError, TypeError) as exc:
        raise PatchLevelError(f"an entry of '{key}' lacks {exc}") from exc


def parse(data: Mapping[str, Any]) -> PatchLevel:
    try:
        return PatchLevel(
            version=str(data["version"]),
            branch=str(data["branch"]),
            floor=str(data["floor"]),
            below_floor=bool(data["below_floor"]),
            allowed_below_floor=bool(data["allowed_below_floor"]),
            missing=_advisories(data.get("missing", []), "missing"),
            open=_advisories(data.get("open", []), "open"),
        )
    except KeyError as exc:
        raise PatchLevelError(f"no {exc} in the patch level") from exc


def load(path: str | Path | None = None) -> PatchLevel | None:
    """The image's patch level (default: SECURITY_PATH); None where no build wrote one."""
    path = path or SECURITY_PATH
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PatchLevelError(f"{path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PatchLevelError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise PatchLevelError(f"{path}: not a JSON object")
    return parse(data)


def status_lines(level: PatchLevel | None) -> list[str]:
    """What `status` prints above the sockets' tables."""
    if level is None:
        return ["HAProxy patch level: unknown (no build record at " + SECURITY_PATH + ")"]
    lines = [("WARNING: " if level.below_floor else "") + level.headline()]
    if level.below_floor:
        lines.append(f"  see {DOC}; build {level.floor} or newer for production")
    if level.open:
        lines.append("  " + level.open_line())
    return lines


def status_json(level: PatchLevel | None) -> dict[str, Any] | None:
    if level is None:
        return None
    return {
        "version": level.version,
        "branch": level.branch,
        "floor": level.floor,
        "below_floor": level.below_floor,
        "allowed_below_floor": level.allowed_below_floor,
        "missing": level.missing_ids,
        "open": [a.id for a in level.open],
    }


# --- bill of materials (CycloneDX 1.6) -----------------------------------------------------


def _vulnerability(advisory: Advisory, ref: str, detail: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": advisory.id,
        "source": {"name": "ray-serve-haproxy haproxy/security-floor.txt"},
        "ratings": [{"severity": advisory.severity, "method": "other"}],
        "description": advisory.summary,
        "affects": [{"ref": ref}],
        "properties": [
            {"name": "ray-serve-haproxy:fixed-in", "value": advisory.fixed_in},
            {"name": "ray-serve-haproxy:fixed-in-basis", "value": advisory.basis},
            {"name": "ray-serve-haproxy:reach", "value": advisory.reach},
            {"name": "ray-serve-haproxy:sources", "value": advisory.source},
        ],
    }
    if advisory.id.startswith("CVE-"):
        entry["source"] = {"name": "NVD", "url": f"https://nvd.nist.gov/vuln/detail/{advisory.id}"}
    if advisory.reachable:
        entry["analysis"] = {"state": "in_triage", "detail": detail}
    else:
        justification = (
            "code_not_present" if advisory.reach in NOT_IN_THIS_BUILD else "requires_configuration"
        )
        entry["analysis"] = {
            "state": "not_affected",
            "justification": justification,
            "detail": f"{detail}; {advisory.why_unreachable}",
        }
    return entry


def sbom_vulnerabilities(level: PatchLevel, ref: str = "haproxy") -> list[dict[str, Any]]:
    """The missing fixes of a below-floor build, and the fixes no release carried yet."""
    entries = [
        _vulnerability(
            a,
            ref,
            f"HAProxy {level.version} is below {a.fixed_in}, the first {level.branch} release "
            f"with the fix ({a.basis}); built with HAPROXY_ALLOW_BELOW_FLOOR=1",
        )
        for a in level.missing
    ]
    entries += [
        _vulnerability(a, ref, "no upstream release was known to carry the fix at build time")
        for a in level.open
    ]
    return entries


def sbom_properties(level: PatchLevel) -> dict[str, str]:
    """Properties of the HAProxy component (prefixed by the bill of materials)."""
    return {
        "security_floor": level.floor,
        "below_security_floor": "true" if level.below_floor else "false",
        "below_security_floor_missing": ",".join(level.missing_ids),
    }
