"""Cluster configurations the benchmark brings up in turn, and which paths each measures.

- haproxy: the image's defaults (HAProxy mode), HAProxy and the direct path (+ gRPC), and
  the entry tier in front of the nodes when the compose project has one (ENTRY_SERVICE);
- python_proxy: the same cluster with RAY_SERVE_ENABLE_HA_PROXY=0, Ray's Python proxy;
- variant: HAProxy with RAY_SERVE_HAPROXY_NBTHREAD=N, and direct again as a control;
- log modes: HAProxy with each RSH_ACCESS_LOG / RAY_SERVE_HAPROXY_METRICS_ENABLED pair asked
  for, at the scoring level only (what each costs per request).
Results of the first two are stored under the path's name; a variant phase's under
<phase> (its HAProxy path) and <phase>_<path> (the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCESS_LOG_MODES = ("all", "errors", "off")
# The compose services every phase runs; the entry tier's only where a phase measures it.
NODE_SERVICES = ("head", "worker", "loadgen")
ENTRY_SERVICE = "entry"


@dataclass
class Phase:
    """One cluster configuration: brought up, measured, torn down."""

    name: str
    env: dict[str, str]
    paths: list[str]
    haproxy: bool
    levels: list[int]
    grpc_levels: list[int] = field(default_factory=list)
    primary: bool = True  # results under the path names themselves
    label_suffix: str = ""  # what sets this cluster apart, in the labels of its paths
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> list[str]:
        """The compose services this phase brings up."""
        entry = any(p in ("entry", "grpc_entry") for p in self.paths)
        return [*NODE_SERVICES, *([ENTRY_SERVICE] if entry else [])]

    def result_key(self, path: str) -> str:
        if self.primary:
            return path
        return self.name if path == self.paths[0] else f"{self.name}_{path}"

    @property
    def grpc(self) -> bool:
        return bool(self.grpc_levels) and any(p.startswith("grpc_") for p in self.paths)


@dataclass(frozen=True)
class LogMode:
    access_log: str
    metrics: bool

    @property
    def phase_name(self) -> str:
        return f"haproxy_log_{self.access_log}_metrics_{int(self.metrics)}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "RSH_ACCESS_LOG": self.access_log,
            "RAY_SERVE_HAPROXY_METRICS_ENABLED": str(int(self.metrics)),
        }


def parse_log_modes(text: str) -> list[LogMode]:
    """ "all:1,errors:1,off:0" -> LogModes (access log : Serve's per-request metrics 0/1)."""
    modes = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        mode, _, metrics = item.partition(":")
        if mode not in ACCESS_LOG_MODES or metrics not in ("0", "1"):
            raise ValueError(f"log mode {item!r}: want <all|errors|off>:<0|1>")
        modes.append(LogMode(mode, metrics == "1"))
    return modes


def build_phases(
    names: list[str],
    *,
    levels: list[int],
    grpc_levels: list[int],
    variant_nbthread: int,
    log_modes: list[LogMode],
    log_mode_levels: list[int],
    extra_env: dict[str, str],
    entry: bool = False,
) -> list[Phase]:
    """`entry`: the compose project has the entry tier; the haproxy phase measures it too."""
    grpc = ["grpc_haproxy", "grpc_direct"] if grpc_levels else []
    via_entry = ["entry", *(["grpc_entry"] if grpc_levels else [])] if entry else []
    phases = []
    if "haproxy" in names:
        phases.append(
            Phase(
                "haproxy",
                {"RAY_SERVE_ENABLE_HA_PROXY": "1"},
                ["haproxy", "direct", *grpc, *via_entry],
                True,
                levels,
                grpc_levels,
            )
        )
    if "python" in names:
        phases.append(
            Phase(
                "python_proxy",
                {"RAY_SERVE_ENABLE_HA_PROXY": "0"},
                ["python_proxy", *(["grpc_python_proxy"] if grpc_levels else [])],
                False,
                levels,
                grpc_levels,
            )
        )
    if "variant" in names and variant_nbthread:
        phases.append(
            Phase(
                f"haproxy_nbthread{variant_nbthread}",
                {
                    "RAY_SERVE_ENABLE_HA_PROXY": "1",
                    "RAY_SERVE_HAPROXY_NBTHREAD": str(variant_nbthread),
                },
                # direct again as a control: cluster starts differ by more than NBTHREAD does
                ["haproxy", "direct"],
                True,
                levels,
                primary=False,
                label_suffix=f"NBTHREAD={variant_nbthread}",
            )
        )
    if "logmodes" in names:
        for mode in log_modes:
            phases.append(
                Phase(
                    mode.phase_name,
                    {"RAY_SERVE_ENABLE_HA_PROXY": "1", **mode.env},
                    ["haproxy"],
                    True,
                    log_mode_levels,
                    primary=False,
                    label_suffix="log-mode cluster",
                )
            )
    for phase in phases:
        phase.env = {**extra_env, **phase.env}
    return phases
