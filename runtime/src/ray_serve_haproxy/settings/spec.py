"""The machinery every group module uses: `Group`, `Spec` and `setting()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar, cast

from ..value_types import ValueType

T = TypeVar("T")


class Group(StrEnum):
    """The docs' settings tables, in this order; each has its module in this package."""

    CORE = "HAProxy core"
    TIMEOUTS = "Timeouts"
    HEALTH = "Health checks"
    PATHS = "File paths"
    OBSERVABILITY = "Metrics and logging"
    INGRESS = "Direct ingress port ranges"
    RUNTIME = "Runtime"
    NETWORK = "Node address and Ray's ports (host networking, firewalls)"
    AUTH = "Token authentication"
    GCS = "GCS fault tolerance"
    ENTRY = "Entry (HAProxy in front of every node)"


@dataclass(frozen=True)
class Spec(Generic[T]):
    """How one environment variable becomes one typed value."""

    env: str
    group: Group
    type: ValueType[T]
    description: str
    # None: unset means "not set" (optional) or, with `derived`, computed at load time.
    default: T | None = None
    # How an unset value is derived (docs); the loader computes it.
    derived: str | None = None
    # Docs text for an unset optional value, e.g. "unset (no timeout)".
    unset_means: str | None = None
    # Exported to the environment of `ray start`, where Ray's constants read it.
    ray: bool = False
    # A secret: error messages show only its length, never the value.
    secret: bool = False


def setting(spec: Spec[T]) -> T:
    # A dataclass field whose metadata holds the spec; typed as the value for mypy.
    return cast(T, field(metadata={"spec": spec}))
