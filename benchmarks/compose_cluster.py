"""The compose cluster a phase runs on: compose.yaml + compose.bench.yaml + the phase's
environment (a third file, written per phase), brought up and torn down with docker compose."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .phases import ENTRY_SERVICE, Phase
from .shell import BenchError, run

REPO = Path(__file__).resolve().parents[1]
BENCH_COMPOSE = REPO / "benchmarks" / "compose.bench.yaml"


@dataclass(frozen=True)
class Member:
    """A running container of the project: `head`, `worker-1`, `loadgen`..."""

    id: str
    name: str  # service, plus -<n> for scaled services
    service: str
    pid: int  # its init process, as the host sees it
    log_path: str  # its json-file log on the host ("" with another logging driver)


def phase_override(phase: Phase, has_entry: bool) -> str:
    """The phase's compose file: its environment merged by key into head's and worker's (JSON
    objects are YAML), and no published ports for the entry tier (compose.bench.yaml cannot
    name a service that compose.yaml may not have)."""
    svc = json.dumps({"environment": phase.env})
    text = f"services:\n  head: {svc}\n  worker: {svc}\n"
    if has_entry:
        text += f"  {ENTRY_SERVICE}:\n    ports: !reset []\n"
    return text


class Cluster:
    def __init__(self, project: str, image: str) -> None:
        self.project = project
        self.image = image
        self.override = Path(tempfile.mkdtemp(prefix="rshbench-")) / "phase.yaml"
        self.env = dict(os.environ, RSH_IMAGE=image)

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        cmd = ["docker", "compose", "-p", self.project, "--project-directory", str(REPO)]
        for f in (REPO / "compose.yaml", BENCH_COMPOSE, self.override):
            cmd += ["-f", str(f)]
        return run(cmd + list(args), timeout=timeout, check=check, env=self.env).stdout

    def services(self) -> list[str]:
        """The services compose.yaml (+ compose.bench.yaml) defines."""
        if not self.override.exists():
            self.override.write_text("{}\n")
        return self.compose("config", "--services").split()

    def up(self, phase: Phase, wait_timeout: int) -> None:
        self.override.write_text(phase_override(phase, ENTRY_SERVICE in self.services()))
        self.compose(
            "up",
            *("-d", "--wait", "--wait-timeout", str(wait_timeout)),
            *phase.services,
            timeout=wait_timeout + 120,
        )

    def down(self) -> None:
        if not self.override.exists():
            self.override.write_text("{}\n")
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300, check=False)

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def head(self) -> str:
        ids = self.containers("head")
        if not ids:
            raise BenchError("no head container")
        return ids[0]

    def loadgen(self) -> str:
        ids = self.containers("loadgen")
        if not ids:
            raise BenchError("no loadgen container")
        return ids[0]

    def members(self) -> list[Member]:
        """Every running container of the project, named by service and number."""
        ids = self.compose("ps", "-q").split()
        if not ids:
            return []
        fmt = (
            '{{.Id}} {{.State.Pid}} {{index .Config.Labels "com.docker.compose.service"}} '
            '{{index .Config.Labels "com.docker.compose.container-number"}} {{.LogPath}}'
        )
        out = run(["docker", "inspect", "-f", fmt, *ids]).stdout
        rows = [line.split() for line in out.splitlines() if line.strip()]
        scaled = {r[2] for r in rows if r[3] != "1"}
        members = [
            Member(
                r[0],
                f"{r[2]}-{r[3]}" if r[2] in scaled or r[2] == "worker" else r[2],
                r[2],
                int(r[1]),
                r[4] if len(r) > 4 else "",
            )
            for r in rows
        ]
        return sorted(members, key=lambda m: m.name)
