"""Pure logic of the differential test: compare two modes' observations, classify each case
with the committed expectations (expectations.yaml), and build the report's data.

A case's class is `same` (both modes answered alike), `expected` (a difference by design, or
one a client cannot notice) or `defect` (Ray's HAProxy mode loses something the Python proxy
does). Only cases that differ are listed in expectations.yaml, each with the fields that
differ, a reason, the upstream issue where Ray has one, and what a user should do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MODES = ("haproxy", "python_proxy")
MODE_TITLES = {"haproxy": "HAProxy mode", "python_proxy": "Python proxy"}
CLASSES = ("same", "expected", "defect")
EXPECTATIONS_FILE = Path(__file__).resolve().parent / "expectations.yaml"


def differing_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Names of the fields whose values differ (missing on one side counts)."""
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


@dataclass(frozen=True)
class Expectation:
    case: str
    klass: str
    fields: tuple[str, ...]
    reason: str
    upstream: tuple[str, ...] = ()
    advice: str = ""
    image: str = ""  # what the image does about it


@dataclass
class Expectations:
    by_case: dict[str, Expectation] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def load_expectations(path: Path = EXPECTATIONS_FILE) -> Expectations:
    """Parses expectations.yaml; malformed entries become problems, not exceptions."""
    raw = yaml.safe_load(path.read_text()) or {}
    result = Expectations()
    for name, entry in (raw.get("cases") or {}).items():
        if not isinstance(entry, dict):
            result.problems.append(f"{name}: not a mapping")
            continue
        klass = entry.get("class")
        if klass not in ("expected", "defect"):
            result.problems.append(f"{name}: class {klass!r}; allowed: expected, defect")
            continue
        if not str(entry.get("reason") or "").strip():
            result.problems.append(f"{name}: no reason")
        if not str(entry.get("advice") or "").strip():
            result.problems.append(f"{name}: no advice (what a user should do)")
        upstream = entry.get("upstream") or []
        if isinstance(upstream, str):
            upstream = [upstream]
        result.by_case[name] = Expectation(
            case=name,
            klass=klass,
            fields=tuple(sorted(entry.get("fields") or [])),
            reason=str(entry.get("reason") or "").strip(),
            upstream=tuple(upstream),
            advice=str(entry.get("advice") or "").strip(),
            image=str(entry.get("image") or "").strip(),
        )
    return result


@dataclass(frozen=True)
class CaseResult:
    name: str
    group: str
    sends: str
    observations: dict[str, dict[str, Any]]  # mode -> observation
    differs: tuple[str, ...]
    expectation: Expectation | None

    @property
    def klass(self) -> str:
        if not self.differs:
            return "same"
        return self.expectation.klass if self.expectation else "unclassified"


def classify(
    cases: list[tuple[str, str, str]],
    observations: dict[str, dict[str, dict[str, Any]]],
    expectations: Expectations,
) -> list[CaseResult]:
    """cases: (name, group, sends) in corpus order; observations: mode -> case -> obs."""
    results = []
    for name, group, sends in cases:
        per_mode = {mode: observations[mode].get(name, {"missing": True}) for mode in MODES}
        differs = tuple(differing_fields(per_mode[MODES[0]], per_mode[MODES[1]]))
        results.append(
            CaseResult(name, group, sends, per_mode, differs, expectations.by_case.get(name))
        )
    return results


def check(results: list[CaseResult], expectations: Expectations) -> list[str]:
    """Everything that makes the committed expectations untrue; empty when they hold."""
    problems = list(expectations.problems)
    names = {r.name for r in results}
    for name in sorted(set(expectations.by_case) - names):
        problems.append(f"{name}: in expectations.yaml but not in the corpus")
    for r in results:
        e = r.expectation
        if r.differs and e is None:
            problems.append(
                f"{r.name}: NEW difference in {', '.join(r.differs)}: "
                + "; ".join(
                    f"{m}={ {k: r.observations[m].get(k) for k in r.differs} }" for m in MODES
                )
            )
        elif not r.differs and e is not None:
            problems.append(f"{r.name}: known {e.klass} GONE: both modes now answer alike")
        elif e is not None and r.differs != e.fields:
            problems.append(
                f"{r.name}: the difference CHANGED: fields {list(e.fields)} -> {list(r.differs)}"
            )
    return problems


def report_data(results: list[CaseResult], versions: dict[str, str]) -> dict[str, Any]:
    """What differences.json holds: stable for a given behaviour (no times, no ids)."""
    counts = {k: sum(1 for r in results if r.klass == k) for k in CLASSES}
    cases = []
    for r in results:
        entry: dict[str, Any] = {
            "name": r.name,
            "group": r.group,
            "sends": r.sends,
            "class": r.klass,
            "differs": list(r.differs),
            **{mode: r.observations[mode] for mode in MODES},
        }
        if r.expectation is not None:
            entry["reason"] = r.expectation.reason
            entry["upstream"] = list(r.expectation.upstream)
            entry["advice"] = r.expectation.advice
            if r.expectation.image:
                entry["image"] = r.expectation.image
        cases.append(entry)
    return {"versions": versions, "summary": {"cases": len(results), **counts}, "cases": cases}
