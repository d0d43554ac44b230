"""`ray-serve-haproxy kuberay`: the runtime around the `ray start` command KubeRay generates.

With the pod annotation `ray.io/overwrite-container-cmd: "true"` KubeRay 1.7 leaves the Ray
container's command alone and hands its generated command in KUBERAY_GEN_RAY_START_CMD
(ray-operator/controllers/ray/common/pod.go, BuildPod and setContainerEnvVars). The command is
`ray start [--head] --opt=value --flag ...`, one option per rayStartParams key, sorted
(convertParamMap), always with `--block` (setMissingRayStartParams); a worker's has
`--address=<head service FQDN>:<port>`. Without the ulimit KubeRay would run before it.

This module parses and checks that command and tells the runtime which role it gives the node
and which of the runtime's settings it fixes. The node then runs exactly as a compose node
does (supervisord, run-ray, the HAProxy launcher, serve-up), with KubeRay's `ray start`
arguments in place of the ones the runtime would build from its own settings.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from .settings_loader import Role

GENERATED_COMMAND_VAR = "KUBERAY_GEN_RAY_START_CMD"
# KubeRay's `ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}` (BuildPod), which it no longer
# runs once the container keeps its own command.
ULIMIT_VAR = "RAY_START_ULIMIT_OPEN_FILES"
DEFAULT_OPEN_FILES = 65536

# Runtime settings that a `ray start` option of KubeRay's command decides. The runtime takes
# the option's value (so probes, serve-up and `config` agree with what Ray runs); a setting
# also given as env must agree with it.
MAPPED_OPTIONS: dict[str, str] = {
    "RSH_HEAD_ADDRESS": "address",
    "RSH_RAY_PORT": "port",
    "RSH_DASHBOARD_HOST": "dashboard-host",
    "RSH_DASHBOARD_PORT": "dashboard-port",
    "RSH_NUM_CPUS": "num-cpus",
    "RSH_OBJECT_STORE_MEMORY": "object-store-memory",
    "RSH_NODE_IP": "node-ip-address",
    "RSH_METRICS_EXPORT_PORT": "metrics-export-port",
    "RSH_DASHBOARD_AGENT_LISTEN_PORT": "dashboard-agent-listen-port",
    "RSH_DASHBOARD_AGENT_GRPC_PORT": "dashboard-agent-grpc-port",
    "RSH_NODE_MANAGER_PORT": "node-manager-port",
    "RSH_OBJECT_MANAGER_PORT": "object-manager-port",
    "RSH_MIN_WORKER_PORT": "min-worker-port",
    "RSH_MAX_WORKER_PORT": "max-worker-port",
    "RSH_RUNTIME_ENV_AGENT_PORT": "runtime-env-agent-port",
    "RSH_RAY_CLIENT_SERVER_PORT": "ray-client-server-port",
}
# Settings that only feed the `ray start` line the runtime would build: under KubeRay that line
# is KubeRay's, so they would silently do nothing. rayStartParams is the place for them.
IGNORED_UNDER_KUBERAY = ("RSH_RAY_START_ARGS",)

ALLOWED_COMMAND = (
    f"allowed: KubeRay's generated `ray start ... --block` (set the pod annotation "
    f'ray.io/overwrite-container-cmd: "true" and leave {GENERATED_COMMAND_VAR} to KubeRay)'
)


# A rayStartParams key as `ray start` spells its options.
OPTION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class GeneratedCommandError(ValueError):
    """KUBERAY_GEN_RAY_START_CMD (or a setting next to it) cannot be run as given."""


@dataclass(frozen=True)
class GeneratedStart:
    """KubeRay's `ray start`: the node's role, its arguments after `ray start`, and its long
    options (`--flag` maps to None)."""

    role: Role
    args: tuple[str, ...]
    options: Mapping[str, str | None]

    def argv(self, ray: str) -> list[str]:
        return [ray, "start", *self.args]


def parse_generated_command(text: str | None) -> GeneratedStart:
    """Parses KubeRay's generated command; raises GeneratedCommandError naming what is wrong."""
    shown = f"{GENERATED_COMMAND_VAR}={text!r}"
    if text is None or not text.strip():
        raise GeneratedCommandError(f"{GENERATED_COMMAND_VAR} is unset or empty; {ALLOWED_COMMAND}")
    try:
        # KubeRay quotes one value itself: --resources='{"x": 1}' (updateRayStartParamsResources).
        words = shlex.split(text)
    except ValueError as exc:
        raise GeneratedCommandError(
            f"{shown}: not a shell word list ({exc}); {ALLOWED_COMMAND}"
        ) from None
    if len(words) < 2 or os.path.basename(words[0]) != "ray" or words[1] != "start":
        raise GeneratedCommandError(f"{shown}: does not begin with `ray start`; {ALLOWED_COMMAND}")
    args = words[2:]
    options: dict[str, str | None] = {}
    for word in args:
        if not word.startswith("--") or word == "--":
            raise GeneratedCommandError(
                f"{shown}: {word!r} is no `--option[=value]`; the runtime runs one `ray start` "
                f"and nothing else (no `;`, `&&` or positional arguments); {ALLOWED_COMMAND}"
            )
        name, equals, value = word[2:].partition("=")
        if not OPTION_NAME.match(name):
            raise GeneratedCommandError(
                f"{shown}: {word!r} is no `ray start` option (shell syntax is not run); "
                f"{ALLOWED_COMMAND}"
            )
        if name in options:
            raise GeneratedCommandError(f"{shown}: --{name} is given twice; {ALLOWED_COMMAND}")
        options[name] = value if equals else None
    head, address = "head" in options, options.get("address")
    if head == (address is not None):
        raise GeneratedCommandError(
            f"{shown}: needs exactly one of --head and --address=<head>:<port> (has "
            f"{'both' if head else 'neither'}); {ALLOWED_COMMAND}"
        )
    if "address" in options and not address:
        raise GeneratedCommandError(f"{shown}: --address has no value; {ALLOWED_COMMAND}")
    if "block" not in options:
        raise GeneratedCommandError(
            f"{shown}: lacks --block (KubeRay always adds it; the runtime supervises a `ray "
            f"start` that stays in the foreground); {ALLOWED_COMMAND}"
        )
    if options["block"] is not None:
        raise GeneratedCommandError(f"{shown}: --block takes no value; {ALLOWED_COMMAND}")
    return GeneratedStart(Role.HEAD if head else Role.WORKER, tuple(args), options)


def settings_environment(start: GeneratedStart, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with the runtime settings that KubeRay's command decides set to its values.

    Raises GeneratedCommandError for a setting given as env that disagrees with the command,
    or one that only feeds the `ray start` line KubeRay's command replaces."""
    env = dict(environ)
    problems = []
    for variable in IGNORED_UNDER_KUBERAY:
        if environ.get(variable, "").strip():
            problems.append(
                f"{variable}={environ[variable]!r}: has no effect under KubeRay, whose "
                f"{GENERATED_COMMAND_VAR} is the whole `ray start`; allowed: unset, with the "
                "options in the group's rayStartParams"
            )
    for variable, option in MAPPED_OPTIONS.items():
        if option not in start.options or start.options[option] is None:
            continue
        from_kuberay = str(start.options[option])
        given = environ.get(variable, "").strip()
        if given and given != from_kuberay:
            problems.append(
                f"{variable}={given!r}: KubeRay's command says --{option}={from_kuberay}; "
                f"allowed: unset, or {from_kuberay!r} (set it in rayStartParams)"
            )
        env[variable] = from_kuberay
    if problems:
        raise GeneratedCommandError("\n".join(problems))
    return env


def raise_open_files_limit(environ: Mapping[str, str]) -> str:
    """KubeRay's `ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}`, as far as the hard limit
    allows a non-root process; returns what was done, for the log."""
    raw = environ.get(ULIMIT_VAR, "").strip() or str(DEFAULT_OPEN_FILES)
    try:
        wanted = int(raw)
    except ValueError:
        raise GeneratedCommandError(
            f"{ULIMIT_VAR}={raw!r}: not a number; allowed: a count of open files, e.g. 65536"
        ) from None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    capped = " (capped by the hard limit)" if target < wanted else ""
    return f"open files limit {soft} -> {target}{capped}"


def prepare(
    environ: Mapping[str, str], *, render_only: bool = False
) -> tuple[GeneratedStart, dict[str, str]]:
    """KubeRay's command parsed, the environment with the settings it fixes (for the validation
    and every program supervisord runs), and, unless only rendering, KubeRay's ulimit applied."""
    start = parse_generated_command(environ.get(GENERATED_COMMAND_VAR))
    environment = settings_environment(start, environ)
    if not render_only:
        note = raise_open_files_limit(environ)
        print(f"ray-serve-haproxy: {note} (KubeRay's ulimit)", flush=True)
    return start, environment
