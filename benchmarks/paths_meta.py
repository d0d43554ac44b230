"""What the results document records about each measured path (results.schema.json, `paths`):
which path, on which phase's cluster, its entry service and the settings it ran with."""

from __future__ import annotations

from typing import Any

from .paths import PATHS
from .phases import Phase


def path_label(phase: Phase, path: str) -> str:
    spec = PATHS[path]
    parts = [p for p in (phase.label_suffix,) if p]
    settings = phase.info.get("runtime_settings") or {}
    if phase.haproxy and path in ("haproxy", "grpc_haproxy") and settings:
        metrics = settings.get("RAY_SERVE_HAPROXY_METRICS_ENABLED")
        parts.append(
            f"access log {settings.get('RSH_ACCESS_LOG')}, "
            f"metrics {'on' if metrics == '1' else 'off' if metrics == '0' else metrics}"
        )
    return f"{spec.label}, {', '.join(parts)}" if parts else spec.label


def path_meta(phase: Phase, path: str) -> dict[str, Any]:
    spec = PATHS[path]
    return {
        "path": path,
        "phase": phase.name,
        "label": path_label(phase, path),
        "entry": spec.entry,
        "grpc": spec.grpc,
        "runtime_settings": phase.info.get("runtime_settings") or {},
    }


def legacy_paths(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`paths` for a results file written before it existed (schema 1): from the keys."""
    var = data.get("variant_path")
    out = {}
    for key in data["results"]:
        if key in PATHS:
            path = key
            phase = "python_proxy" if "python" in key else "haproxy"
        elif var and key.startswith(var):
            path, phase = ("haproxy" if key == var else key[len(var) + 1 :]), var
        else:
            continue
        spec = PATHS[path]
        out[key] = {
            "path": path,
            "phase": phase,
            "label": spec.label if phase != var else f"{spec.label}, {var}",
            "entry": spec.entry,
            "grpc": spec.grpc,
            "runtime_settings": {},
        }
    return out
