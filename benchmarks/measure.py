"""Measuring one phase: an idle CPU window, then per concurrency a warm-up and rounds of every
path, interleaved (who goes first rotates) so drift hits the paths alike. Every round carries
the CPU the containers and the host's relays used in a window inside it (cpu_accounting.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compose_cluster import Cluster
from .cpu_accounting import CpuAccountingError, CpuMeter, container_cgroup, window
from .load import measure, short
from .load_settings import LoadSettings
from .paths import PATHS, Target, target_for
from .phases import Phase
from .readiness import check_grpc_targets
from .shell import log


@dataclass(frozen=True)
class MeasureSettings:
    load: LoadSettings
    rounds: int
    duration_s: float
    warmup_s: float
    idle_s: float  # CPU window with no load, before the first warm-up (0: none)


def cpu_lead_s(duration_s: float) -> float:
    """Time left out of the CPU window after the load starts and before it ends: docker exec
    setup, connection set-up and wrk's report are not requests."""
    return min(1.5, duration_s / 4)


def cpu_meter(cluster: Cluster, phase: Phase) -> CpuMeter | None:
    """A meter of every container of the project, breaking down the entry containers of the
    phase's paths by process; None (and a warning) where cgroups cannot be read."""
    entry_services = {PATHS[p].entry for p in phase.paths}
    try:
        members = cluster.members()
        cgroups = {m.name: container_cgroup(m.name, m.pid) for m in members}
        entry = [m.name for m in members if m.service in entry_services]
        logs = {m.name: Path(m.log_path) for m in members if m.log_path}
        meter = CpuMeter(cgroups, entry, log_files=logs)
        meter.snapshot()  # fail now, not in the middle of a round
        return meter
    except (CpuAccountingError, OSError) as exc:
        log(f"WARNING: no CPU accounting for phase {phase.name}: {exc}")
        return None


def measured_round(
    meter: CpuMeter | None,
    loadgen: str,
    target: Target,
    level: int,
    duration: float,
    load: LoadSettings,
) -> dict[str, Any]:
    """One load run; with a meter, its result carries `cpu`, the window's CPU use and the
    requests answered in the window (the run's rate times the window's length)."""
    if meter is None:
        return measure(loadgen, target, level, duration, load)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = measure(loadgen, target, level, duration, load)
        except BaseException as exc:  # re-raised below, in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"load-{target.path}")
    thread.start()
    lead = cpu_lead_s(duration)
    time.sleep(lead)
    before = meter.snapshot()
    time.sleep(max(0.5, duration - 2 * lead))
    after = meter.snapshot()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result: dict[str, Any] = outcome["result"]
    cpu = window(before, after)
    cpu["requests"] = round(result["requests_per_s"] * cpu["window_s"])
    result["cpu"] = cpu
    return result


def idle_window(meter: CpuMeter, seconds: float) -> dict[str, Any]:
    before = meter.snapshot()
    time.sleep(seconds)
    return window(before, meter.snapshot())


def measure_phase(
    cluster: Cluster, phase: Phase, settings: MeasureSettings, results: dict[str, Any]
) -> None:
    """Fills results[<result key>][<level>] = {warmup, rounds} for every path of the phase."""
    loadgen = cluster.loadgen()
    targets = [target_for(PATHS[p], phase.info) for p in phase.paths]
    check_grpc_targets(loadgen, phase, targets)
    meter = cpu_meter(cluster, phase)
    if meter is not None and settings.idle_s > 0:
        phase.info["idle_cpu"] = idle_window(meter, settings.idle_s)
        log(
            f"{phase.name:>18} idle CPU (ms in {settings.idle_s:g}s): "
            f"{phase.info['idle_cpu']['containers_ms']}"
        )
    for level in phase.levels:
        at_level = [t for t in targets if not t.grpc or level in phase.grpc_levels]
        for t in at_level:
            w = measure(loadgen, t, level, settings.warmup_s, settings.load)
            log(f"{phase.name:>18} {t.path:>16} c={level:<4} warm-up   {short(w)}")
            cells = results.setdefault(phase.result_key(t.path), {})
            cells.setdefault(str(level), {"rounds": []})["warmup"] = w
        for rnd in range(settings.rounds):
            k = rnd % len(at_level)  # rotate who goes first
            for t in at_level[k:] + at_level[:k]:
                r = measured_round(meter, loadgen, t, level, settings.duration_s, settings.load)
                r["round"] = rnd + 1
                log(f"{phase.name:>18} {t.path:>16} c={level:<4} round {rnd + 1}   {short(r)}")
                results[phase.result_key(t.path)][str(level)]["rounds"].append(r)
