"""Every setting of the image, declared once: one module per docs group.

Each field carries its `Spec` (spec.py): the environment variable, its type (parser and
allowed values), default, group and description. Loading (settings_loader.py), the `config`
command and the docs' settings table (docs.py) are all generated from these declarations.

To add a setting, add a field to the group module it belongs to (haproxy_core.py, timeouts.py,
health_checks.py, file_paths.py, observability.py, ingress.py, runtime.py, network.py,
auth.py, gcs.py, entry.py), at the place you want its row in the docs' table, then regenerate
the docs (`ray-serve-haproxy settings-table --write ...`). A rule that ties it to other
settings goes in settings_rules.py. A new group: add it to `Group` (spec.py, the docs' order),
give it a module with a frozen dataclass like the others, and list that class in `Settings`
below. Shared numbers live in limits.py.

The HAProxy variables are the ones the Ray Serve HAProxy guide documents plus those Ray 2.60
reads that matter in a container. Defaults follow the guide; where Ray 2.60 reads a variable
differently, or not at all, the description says so and the runtime translates.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, cast

from .auth import AuthSettings
from .entry import EntrySettings
from .file_paths import FilePathSettings
from .gcs import GCS_MEMORY, GCS_ROCKSDB, GcsSettings
from .haproxy_core import HAProxyCoreSettings
from .health_checks import HealthCheckSettings
from .ingress import IngressSettings
from .limits import (
    HAPROXY_FD_OVERHEAD,
    MAX_DERIVED_NBTHREAD,
    MAX_HARD_STOP_AFTER_S,
    MAX_TIMEOUT_S,
    OBJECT_STORE_MINIMUM_BYTES,
    RAY_STOP_RESERVE_S,
    SERVE_KEEP_ALIVE_S,
    derived_hard_stop_after,
    haproxy_fds_needed,
    max_maxconn_for,
)
from .network import NetworkSettings
from .observability import ObservabilitySettings
from .runtime import RuntimeSettings
from .spec import Group, Spec, setting
from .timeouts import TimeoutSettings

__all__ = [
    "GCS_MEMORY",
    "GCS_ROCKSDB",
    "HAPROXY_FD_OVERHEAD",
    "MAX_DERIVED_NBTHREAD",
    "MAX_HARD_STOP_AFTER_S",
    "MAX_TIMEOUT_S",
    "OBJECT_STORE_MINIMUM_BYTES",
    "RAY_STOP_RESERVE_S",
    "SERVE_KEEP_ALIVE_S",
    "Group",
    "Settings",
    "Spec",
    "derived_hard_stop_after",
    "haproxy_fds_needed",
    "max_maxconn_for",
    "setting",
    "spec_by_env",
    "specs",
]


# Dataclasses take the fields of the LAST base first: read this list bottom-up for the order
# of `config` and of the docs (HAProxy core first, entry last).
@dataclass(frozen=True)
class Settings(
    EntrySettings,
    GcsSettings,
    NetworkSettings,
    AuthSettings,
    RuntimeSettings,
    IngressSettings,
    ObservabilitySettings,
    FilePathSettings,
    HealthCheckSettings,
    TimeoutSettings,
    HAProxyCoreSettings,
):
    """Effective, validated values of every group; field order is the order of the docs."""


def specs() -> list[tuple[str, Spec[Any]]]:
    """(field name, spec) of every setting, in declaration order."""
    return [(f.name, cast(Spec[Any], f.metadata["spec"])) for f in fields(Settings)]


def spec_by_env() -> dict[str, tuple[str, Spec[Any]]]:
    return {spec.env: (name, spec) for name, spec in specs()}
