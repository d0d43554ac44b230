"""What a cross-setting rule sees (the parsed values, their sources, the role, the host) and
how it reports a problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..host_facts import HostFacts
from ..settings import Spec, specs


class Role(StrEnum):
    HEAD = "head"
    WORKER = "worker"
    # HAProxy in front of every node's HAProxy (entry.py); runs no Ray.
    ENTRY = "entry"


class Source(StrEnum):
    DEFAULT = "default"
    ENVIRONMENT = "environment"
    DERIVED = "derived"


@dataclass(frozen=True)
class SettingError:
    variable: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"{self.variable}={self.value!r}: {self.problem}"


class _Invalid:
    """Placeholder for a value that failed to parse; cross-checks skip it."""


INVALID = _Invalid()


def render(spec: Spec[Any], value: Any) -> str:
    if value is None:
        return ""
    return spec.type.render(value)


@dataclass
class RuleContext:
    """Everything loaded so far; a rule reads it and calls `error` for each problem."""

    values: Mapping[str, Any]  # by field name; INVALID where parsing failed
    sources: Mapping[str, Source]  # by variable name
    role: Role | None
    facts: HostFacts
    env: Mapping[str, str]  # the raw environment (for Ray's variables we do not declare)
    errors: list[SettingError] = field(default_factory=list)
    # How a derived value was computed, by variable name (shown by `config`).
    derivations: dict[str, str] = field(default_factory=dict)
    _specs: dict[str, Spec[Any]] = field(default_factory=lambda: dict(specs()), repr=False)

    def valid(self, *names: str) -> bool:
        """Whether every named value parsed (rules skip values already reported)."""
        return all(self.values[n] is not INVALID for n in names)

    def env_of(self, name: str) -> str:
        return self._specs[name].env

    def from_environment(self, name: str) -> bool:
        """Whether the user set `name` (rather than a default or a derivation)."""
        return self.sources[self.env_of(name)] == Source.ENVIRONMENT

    def error(self, name: str, problem: str, value: Any = None) -> None:
        """Report `problem` against the setting `name`, showing its value (or `value`)."""
        shown = render(self._specs[name], self.values[name]) if value is None else str(value)
        self.errors.append(SettingError(self.env_of(name), shown, problem))


Rule = Callable[[RuleContext], None]
