"""What `serve-up` does with the declared Serve config when the head starts: deploy it, or leave
Serve's (recovered) applications alone. Pure logic, no Ray: the decision table of
docs/serve-config-lifecycle.md and the differences between applications its log lines name.

The declared config is RSH_SERVE_CONFIG as serve-up renders it (http_options and grpc_options
forced to the runtime's ports). The record is the last declared config serve-up submitted, kept
in the GCS (with the cluster's state, so it survives head restarts and replacements), and
whether every one of its applications was seen RUNNING afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RECORD_FORMAT = 1


def canonical(config: Any) -> str:
    """One text per config, whatever the order of the file's keys."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def fingerprint(config: Any) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:12]


def apps_of(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> application (Serve names an unnamed one `default`)."""
    return {str(app.get("name", "default")): app for app in config.get("applications") or []}


class RecordState(StrEnum):
    SUBMITTED = "submitted"  # Serve accepted the deploy; not every application seen RUNNING yet
    APPLIED = "applied"  # every application of it was RUNNING


@dataclass(frozen=True)
class Record:
    config: dict[str, Any]
    state: RecordState
    source: str  # the file's path
    at: str  # when serve-up submitted it (UTC, ISO 8601)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": RECORD_FORMAT,
                "config": self.config,
                "state": self.state.value,
                "source": self.source,
                "at": self.at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        """Raises ValueError for anything this version did not write."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError(f"not a record of format {RECORD_FORMAT}")
        config = data.get("config")
        if not isinstance(config, dict):
            raise ValueError("the record holds no config")
        return cls(
            config, RecordState(str(data.get("state"))), str(data["source"]), str(data["at"])
        )

    def with_state(self, state: RecordState) -> Record:
        return Record(self.config, state, self.source, self.at)


# --- what differs between two sets of applications ---------------------------------------------

MAX_DETAILS = 3  # per application in a log line


def _short(value: Any) -> str:
    text = "unset" if value is _UNSET else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


_UNSET = object()


def _named(items: list[Any]) -> dict[str, Any] | None:
    """A list of mappings that all have a `name` (deployments) as name -> item, else None."""
    if items and all(isinstance(i, dict) and "name" in i for i in items):
        return {str(i["name"]): i for i in items}
    return None


def differences(old: Any, new: Any, *, declared_only: bool = False, path: str = "") -> list[str]:
    """Where `new` differs from `old`, as `path: old -> new`. declared_only: only what `new`
    sets (`new` is the file, `old` what Serve reports, which spells out more)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(new) if declared_only else sorted(set(old) | set(new), key=str)
        found: list[str] = []
        for key in keys:
            sub = f"{path}.{key}" if path else str(key)
            found += differences(
                old.get(key, _UNSET), new.get(key, _UNSET), declared_only=declared_only, path=sub
            )
        return found
    if isinstance(old, list) and isinstance(new, list):
        old_named, new_named = _named(old), _named(new)
        if old_named is not None and new_named is not None:
            return differences(old_named, new_named, declared_only=declared_only, path=path)
    if old is _UNSET and new is _UNSET:
        return []
    if old != new:
        return [f"{path}: {_short(old)} -> {_short(new)}"]
    return []


@dataclass(frozen=True)
class AppDiff:
    """From one set of applications to another: what a deploy adds, changes, removes, keeps."""

    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # app -> its differences
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self, *, kept: bool = True) -> str:
        parts = []
        if self.added:
            parts.append(f"adds {', '.join(self.added)}")
        if self.changed:
            changes = []
            for app, details in self.changed.items():
                shown = "; ".join(details[:MAX_DETAILS])
                more = f"; {len(details) - MAX_DETAILS} more" if len(details) > MAX_DETAILS else ""
                changes.append(f"{app} ({shown}{more})" if details else app)
            parts.append(f"changes {', '.join(changes)}")
        if self.removed:
            parts.append(f"removes {', '.join(self.removed)}")
        if kept and self.kept:
            parts.append(f"keeps {', '.join(self.kept)}")
        return "; ".join(parts) or "no application"


def diff_apps(
    before: Mapping[str, Any], after: Mapping[str, Any], *, declared_only: bool = False
) -> AppDiff:
    """`before`/`after`: name -> application config (None: Serve reports no config for it,
    e.g. an application `serve.run` deployed). declared_only: see `differences`."""
    changed: dict[str, list[str]] = {}
    kept = []
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        if old is None or new is None:
            changed[name] = ["no deployed config to compare"]
            continue
        found = differences(old, new, declared_only=declared_only)
        if found:
            changed[name] = found
        else:
            kept.append(name)
    return AppDiff(
        added=sorted(set(after) - set(before)),
        changed=changed,
        removed=sorted(set(before) - set(after)),
        kept=kept,
    )


def option_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The config's keys other than `applications` that differ (http_options, grpc_options...)."""
    keys = (set(old) | set(new)) - {"applications"}
    return sorted(k for k in keys if old.get(k) != new.get(k))


# --- the decision ----------------------------------------------------------------------------


class Reason(StrEnum):
    NO_CONFIG = "no Serve config declared: nothing deployed, nothing removed"
    FORCED = "deploying it (--force)"
    NEW_CLUSTER = "a new cluster (no application, no config applied before): deploying it"
    NO_RECORD_MATCHES = (
        "no config applied before on record (a cluster of an older image?), and Serve's "
        "applications match it: not deploying it, recording it as applied"
    )
    NO_RECORD_DIFFERS = (
        "no config applied before on record (a cluster of an older image?), and Serve's "
        "applications differ from it: deploying it (the file wins)"
    )
    CHANGED = "changed since it was last applied: deploying it"
    NOTHING_RUNS = "unchanged, but Serve has no application: deploying it"
    NOT_CONFIRMED = "unchanged, but its last deploy was never seen RUNNING: deploying it again"
    UNCHANGED = "unchanged since it was applied: not deploying it; Serve's applications stay"


@dataclass(frozen=True)
class Decision:
    deploy: bool
    reason: Reason


def decide(
    declared: Mapping[str, Any] | None,
    record: Record | None,
    live: Mapping[str, Any],
    *,
    force: bool = False,
) -> Decision:
    """The decision table. `live`: Serve's applications now (name -> deployed config, or None
    when Serve reports none), i.e. what it recovered from the GCS after a head restart."""
    if declared is None:
        return Decision(False, Reason.NO_CONFIG)
    if force:
        return Decision(True, Reason.FORCED)
    if record is None:
        if not live:
            return Decision(True, Reason.NEW_CLUSTER)
        if diff_apps(live, apps_of(declared), declared_only=True).differs:
            return Decision(True, Reason.NO_RECORD_DIFFERS)
        return Decision(False, Reason.NO_RECORD_MATCHES)
    if canonical(record.config) != canonical(declared):
        return Decision(True, Reason.CHANGED)
    if not live:
        return Decision(True, Reason.NOTHING_RUNS)
    if record.state != RecordState.APPLIED:
        return Decision(True, Reason.NOT_CONFIRMED)
    return Decision(False, Reason.UNCHANGED)


def deploy_report(
    declared: Mapping[str, Any], record: Record | None, live: Mapping[str, Any]
) -> list[str]:
    """The log lines of a deploy: what changed in the file since it was last applied, what the
    deploy does to what Serve runs, and which changes made through Serve's API it replaces."""
    lines = []
    declared_apps = apps_of(declared)
    if record is not None and canonical(record.config) != canonical(declared):
        file_diff = diff_apps(apps_of(record.config), declared_apps)
        options = option_changes(record.config, declared)
        text = file_diff.describe(kept=False) if file_diff.differs else "no application changed"
        if options:
            text += f"; options {', '.join(options)} changed"
        lines.append(f"the file changed since it was applied ({record.at}): {text}")
    lines.append(
        "deploying it over what Serve runs: "
        + diff_apps(live, declared_apps, declared_only=True).describe()
    )
    if record is not None and live:
        recorded = apps_of(record.config)
        # What the API changed that the file now overrides. Serve spells out more than a file
        # does: only what the record sets is compared.
        replaced = [
            *(f"{name} (added through the API)" for name in sorted(set(live) - set(recorded))),
            *(f"{name} (removed through the API)" for name in sorted(set(recorded) - set(live))),
            *(
                f"{name} (changed through the API)"
                for name in sorted(set(live) & set(recorded))
                if live[name] is None or differences(live[name], recorded[name], declared_only=True)
            ),
        ]
        if replaced:
            lines.append(
                "this replaces what was changed through Serve's API since: " + ", ".join(replaced)
            )
    return lines


def option_warning(record: Record | None, declared: Mapping[str, Any]) -> str | None:
    """Serve fixes its HTTP and gRPC options when it starts: a change of them in the file does
    not reach a Serve that recovered (Ray: "The new HTTP config is ignored")."""
    if record is None:
        return None
    changed = [k for k in option_changes(record.config, declared) if k.endswith("_options")]
    if not changed:
        return None
    return (
        f"WARNING: {', '.join(changed)} changed in the file; Serve keeps the ones it started with "
        "until the cluster starts anew (`docker compose down -v`; docs/serve-config-lifecycle.md)"
    )
