"""The commands of docs/docker-run.md "A cluster of machines with `docker run`", parsed.

The section marks its commands with `<!-- machines:start -->` ... `<!-- machines:end -->` and its
firewall table with `<!-- machines-ports:start -->` ... `<!-- machines-ports:end -->`. The unit
test checks the commands' settings and the table against the runtime's settings code; the image
test runs the commands. Both read them from here, so the docs cannot drift from what is tested.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "docker-run.md"
COMMANDS = ("<!-- machines:start -->", "<!-- machines:end -->")
PORTS = ("<!-- machines-ports:start -->", "<!-- machines-ports:end -->")

# The docs' example addresses (the section's table of machines).
HEAD_IP = "10.0.0.1"
WORKER_IPS = ("10.0.0.2", "10.0.0.3")
ENTRY_IP = "10.0.0.10"
DOCS_IMAGE = "ray-serve-haproxy:latest"


def _marked(start: str, end: str) -> str:
    text = DOCS.read_text()
    assert start in text and end in text, f"{DOCS.name} lacks the {start} block"
    return text[text.index(start) + len(start) : text.index(end)]


def commands() -> list[str]:
    """Every shell command of the ```bash blocks, continuation lines joined; comment-only lines
    left out, trailing comments kept (the shell and shlex ignore them)."""
    found: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", _marked(*COMMANDS), re.S):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1].rstrip() + " "
                continue
            joined = (pending + line).strip()
            pending = ""
            if joined and not joined.startswith("#"):
                found.append(joined)
    return found


@dataclass
class DockerRun:
    """One documented `docker run`, flag by flag."""

    name: str = ""
    image: str = ""
    command: list[str] = field(default_factory=list)
    network: str | None = None
    shm_size: str | None = None
    stop_timeout: int | None = None
    restart: str | None = None
    volumes: list[str] = field(default_factory=list)  # "source:target[:mode]"
    env: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)

    @property
    def role(self) -> str:
        return self.command[0] if self.command else "head"


# The flags the docs may use: each must be translated by the image test, so any other flag fails
# the parse instead of being silently dropped.
_WITH_VALUE = {
    "--name": "name",
    "--network": "network",
    "--shm-size": "shm_size",
    "--stop-timeout": "stop_timeout",
    "--restart": "restart",
    "-v": "volumes",
    "-e": "env",
    "-p": "ports",
}


def parse_docker_run(command: str) -> DockerRun:
    tokens = shlex.split(command, comments=True)
    if tokens[:2] != ["docker", "run"]:
        raise ValueError(f"not a docker run: {command}")
    run = DockerRun()
    rest = tokens[2:]
    while rest:
        token = rest.pop(0)
        if token == "-d":
            continue
        if not token.startswith("-"):
            run.image, run.command = token, rest
            break
        if token not in _WITH_VALUE or not rest:
            raise ValueError(f"docker run flag {token!r} is not one the tests translate")
        value, attribute = rest.pop(0), _WITH_VALUE[token]
        if attribute == "env":
            key, _, val = value.partition("=")
            run.env[key] = val
        elif attribute in ("volumes", "ports"):
            getattr(run, attribute).append(value)
        elif attribute == "stop_timeout":
            run.stop_timeout = int(value)
        else:
            setattr(run, attribute, value)
    if not run.image:
        raise ValueError(f"docker run without an image: {command}")
    return run


def docker_runs() -> dict[str, DockerRun]:
    """role (head, worker, entry) -> its documented `docker run`."""
    runs: dict[str, DockerRun] = {}
    for command in commands():
        if command.startswith("docker run "):
            run = parse_docker_run(command)
            assert run.role not in runs, f"two `docker run ... {run.role}` in the docs"
            runs[run.role] = run
    return runs


@dataclass(frozen=True)
class PortRow:
    ports: str  # "8000" or "30000-31000"
    setting: str
    what: str


def port_rows() -> list[PortRow]:
    """The firewall table's rows: port(s), setting, what."""
    rows = []
    for line in _marked(*PORTS).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"\d+(-\d+)?", cells[0]):
            continue  # header, separator, blank
        rows.append(PortRow(cells[0], cells[1].strip("`"), cells[2]))
    return rows
