"""The machine the numbers come from, and whether anything else was running on it."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from .shell import log, run


def other_activity(project: str) -> list[str]:
    """Containers of other compose projects, and image builds, running now."""
    out = run(
        ["docker", "ps", "--format", '{{.Names}}\t{{.Label "com.docker.compose.project"}}'],
        check=False,
    ).stdout
    others = [
        ln.split("\t")[0] for ln in out.splitlines() if ln and ln.split("\t")[1:] != [project]
    ]
    builds = run(["pgrep", "-f", "buildx bake"], check=False).stdout.split()
    if builds:
        others.append(f"buildx bake (pid {' '.join(builds)})")
    return others


def wait_for_quiet(project: str, max_wait: float) -> list[str]:
    """Two cores only: wait while other projects' containers or builds run."""
    deadline = time.monotonic() + max_wait
    others = other_activity(project)
    if others:
        log(f"waiting (up to {max_wait:.0f}s) for other work to finish: {', '.join(others)}")
    while others and time.monotonic() < deadline:
        time.sleep(10)
        others = other_activity(project)
    if others:
        log(f"WARNING: measuring beside other work, numbers are contended: {', '.join(others)}")
    return others


def machine_info(image: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem_kb = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    labels_raw = run(
        ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image], check=False
    ).stdout
    try:
        labels = json.loads(labels_raw) or {}
    except json.JSONDecodeError:
        labels = {}
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else "unknown",
        "memory_gib": round(int(mem_kb.group(1)) / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "docker_server": run(
            ["docker", "version", "-f", "{{.Server.Version}}"], check=False
        ).stdout.strip(),
        "docker_compose": run(
            ["docker", "compose", "version", "--short"], check=False
        ).stdout.strip(),
        "image": image,
        "image_id": run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", image], check=False
        ).stdout.strip()[:19],
        "ray_version": labels.get("io.ray-serve-haproxy.ray.version"),
        "haproxy_version": labels.get("io.ray-serve-haproxy.haproxy.version"),
    }
