"""`ray-serve-haproxy <command>`: the image's entrypoint and operator commands.

Any first argument that is not a command and does not start with '-' is executed as given
(docker-entrypoint style), so `docker run IMAGE bash` or `docker run IMAGE ray --version` work.
Command modules are imported when their command runs, to keep probes quick.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .cli_common import (
    EXIT_INVALID_SETTINGS,
    _fail,
    _load,
    _recorded_role,
    _role_arg,
)
from .cli_inspect import cmd_sbom, cmd_sbom_generate, cmd_status
from .settings_loader import EffectiveSettings, InvalidSettings, Role, Source, load_settings

NODE_ROLES = (Role.HEAD, Role.WORKER)


# --- head / worker ----------------------------------------------------------------------------


def _supervisord_argv() -> list[str]:
    sibling = os.path.join(os.path.dirname(sys.executable), "supervisord")
    if os.access(sibling, os.X_OK):
        return [sibling]
    found = shutil.which("supervisord")
    return [found] if found else [sys.executable, "-m", "supervisor.supervisord"]


def _supervisord_environment(
    effective: EffectiveSettings, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The container's environment minus empty setting variables (empty means unset here, but
    Ray would choke on `int("")`); supervisord's config then adds the effective values."""
    names = {name for name, _, _ in effective.rows()}
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not (k in names and not v.strip())}


def cmd_node(role: Role, args: argparse.Namespace) -> int:
    return _run_node(role, args)


def _run_node(
    role: Role,
    args: argparse.Namespace,
    *,
    ray_start: Callable[[str], list[str]] | None = None,
    how: str = "",
    environ: Mapping[str, str] | None = None,
) -> int:
    """Validate, prepare, render supervisord.conf and exec supervisord for a head or worker;
    `ray_start(ray)`: KubeRay's `ray start` in place of the one built from the settings."""
    from .ray_process import ray_executable
    from .state_dir import (
        SUPERVISOR_CONF,
        UnsafeDirectory,
        clear_markers,
        ensure_private_dir,
        private_dirs,
        write_atomic,
        write_role,
    )
    from .supervisor_config import render_supervisor_config

    effective = _load(role, environ=environ)
    if effective is None:
        return EXIT_INVALID_SETTINGS
    values = effective.values
    try:
        for directory in private_dirs(values):
            ensure_private_dir(directory)
    except (UnsafeDirectory, OSError) as exc:
        return _fail(f"cannot prepare a private directory: {exc}", EXIT_INVALID_SETTINGS)
    write_role(values.state_dir, role)
    clear_markers(values.state_dir)
    config = render_supervisor_config(
        effective,
        role,
        inherited_pythonpath=os.environ.get("PYTHONPATH"),
        ray_start=ray_start(ray_executable()) if ray_start else None,
        # Under KubeRay, whoever deploys starts Serve with its config's HTTP/gRPC options (fixed
        # once Serve runs): serve-up runs only to deploy RSH_SERVE_CONFIG.
        with_serve_up=role == Role.HEAD and bool(values.serve_config) if ray_start else None,
    )
    path = Path(values.state_dir) / SUPERVISOR_CONF
    write_atomic(path, config)
    if args.render_only:
        print(path)
        return 0
    # What this node runs with, in the container log: everything not left at its default.
    print(f"ray-serve-haproxy: starting a {role.value} node{how} with", flush=True)
    for name, value, source in effective.rows():
        if source != Source.DEFAULT:
            print(f"  {name}={value} ({source.value})", flush=True)
    argv = [*_supervisord_argv(), "-n", "-c", str(path)]
    sys.stdout.flush()
    # exec: supervisord becomes tini's child and receives the container's signals.
    os.execve(argv[0], argv, _supervisord_environment(effective, environ))
    return 0  # not reached


def cmd_kuberay(args: argparse.Namespace) -> int:
    """A KubeRay pod: the role and `ray start` come from KUBERAY_GEN_RAY_START_CMD."""
    from .kuberay import GENERATED_COMMAND_VAR, GeneratedCommandError, prepare

    try:
        start, environment = prepare(os.environ, render_only=args.render_only)
    except GeneratedCommandError as exc:
        return _fail(f"{exc}\nnothing was started", EXIT_INVALID_SETTINGS)
    how = f" from {GENERATED_COMMAND_VAR}"
    return _run_node(start.role, args, ray_start=start.argv, how=how, environ=environment)


def cmd_entry(args: argparse.Namespace) -> int:
    from .entry import check_config, config_path, render_haproxy_config
    from .state_dir import (
        SUPERVISOR_CONF,
        UnsafeDirectory,
        ensure_private_dir,
        write_atomic,
        write_role,
    )
    from .supervisor_config import render_entry_supervisor_config

    effective = _load(Role.ENTRY)
    if effective is None:
        return EXIT_INVALID_SETTINGS
    values = effective.values
    try:
        ensure_private_dir(values.state_dir)
    except (UnsafeDirectory, OSError) as exc:
        return _fail(f"cannot prepare a private directory: {exc}", EXIT_INVALID_SETTINGS)
    write_role(values.state_dir, Role.ENTRY)
    haproxy_config = config_path(values.state_dir)
    write_atomic(haproxy_config, render_haproxy_config(values))
    supervisor_config = Path(values.state_dir) / SUPERVISOR_CONF
    write_atomic(supervisor_config, render_entry_supervisor_config(effective))
    if values.entry_tls_cert:
        from .entry_tls import write_certs

        try:
            tls_lines = write_certs(values)
        except ValueError as exc:  # a file changed since the settings were checked
            return _fail(f"RSH_ENTRY_TLS_CERT: {exc}; nothing was started", EXIT_INVALID_SETTINGS)
        for line in tls_lines:
            print(f"ray-serve-haproxy: {line}", flush=True)
    if args.render_only:
        print(haproxy_config)
        print(supervisor_config)
        return 0
    problem = check_config(values)
    if problem:
        return _fail(
            f"HAProxy refuses the entry's configuration {haproxy_config}; nothing was "
            f"started:\n{problem}",
            EXIT_INVALID_SETTINGS,
        )
    print("ray-serve-haproxy: starting an entry with", flush=True)
    for name, value, source in effective.rows():
        if source != Source.DEFAULT:
            print(f"  {name}={value} ({source.value})", flush=True)
    argv = [*_supervisord_argv(), "-n", "-c", str(supervisor_config)]
    os.execve(argv[0], argv, _supervisord_environment(effective))
    return 0  # not reached


# --- operator commands ------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from .env_checks import Level, run_checks
    from .host_facts import HostFacts

    role = _role_arg(args.role) or _recorded_role() or Role.HEAD
    facts = HostFacts.probe()
    try:
        effective = load_settings(role=role, facts=facts)
    except InvalidSettings as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    print(f"settings: OK ({role.value})")
    findings = run_checks(effective, role, facts, ports=not args.no_ports)
    for finding in findings:
        print(finding)
    failed = [f for f in findings if f.level == Level.FAIL]
    print(f"check: {'FAILED' if failed else 'OK'} ({len(failed)} failure(s))")
    return 1 if failed else 0


def cmd_config(args: argparse.Namespace) -> int:
    from .table import render_table

    effective = _load(_role_arg(args.role))
    if effective is None:
        return EXIT_INVALID_SETTINGS
    rows = effective.rows()
    if args.json:
        data: dict[str, dict[str, str | None]] = {
            name: {"value": value or None, "source": source.value} for name, value, source in rows
        }
        for name, how in effective.derivations.items():
            data[name]["derivation"] = how
        print(json.dumps({"settings": data, "ray_env": effective.ray_env()}, indent=2))
    elif args.env:
        import shlex

        for name, value in effective.ray_env().items():
            print(f"export {name}={shlex.quote(value)}")
    else:
        table = [[n, v or "(unset)", s.value] for n, v, s in rows]
        print(render_table(["NAME", "VALUE", "SOURCE"], table))
        for name, how in effective.derivations.items():
            print(f"{name} (derived): {how}")
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from .healthcheck import Probe, run_checks

    role = _role_arg(args.role) or _recorded_role()
    # The entry has no token (it talks to no Ray); a node's checks may ask the dashboard.
    effective = _load(None, check_token=role != Role.ENTRY)
    if effective is None:
        return 1
    probe = (
        Probe.LIVENESS if args.liveness else Probe.READINESS if args.readiness else Probe.DEFAULT
    )
    results = run_checks(effective.values, role, probe)
    if not args.quiet:
        for result in results:
            print(result)
    return 0 if all(r.ok for r in results) else 1


def cmd_drain(args: argparse.Namespace) -> int:
    from .ray_process import drain

    # A local `ray stop` needs no token, and a graceful stop must not hinge on its file.
    effective = _load(None, check_token=False)
    if effective is None:
        return EXIT_INVALID_SETTINGS
    return drain(effective.values)


def cmd_settings_table(args: argparse.Namespace) -> int:
    from .docs import block_matches, replace_block, settings_table

    table = settings_table()
    if args.write:
        path = Path(args.write)
        try:
            path.write_text(replace_block(path.read_text(), table))
        except (OSError, ValueError) as exc:
            return _fail(f"{path}: {exc}")
        print(f"updated the settings table in {path}")
    elif args.check:
        path = Path(args.check)
        if not block_matches(path.read_text(), table):
            return _fail(
                f"the settings table in {path} is out of date: run "
                f"`ray-serve-haproxy settings-table --write {path}`"
            )
        print(f"the settings table in {path} is up to date")
    else:
        sys.stdout.write(table)
    return 0


def cmd_run_ray(args: argparse.Namespace) -> int:
    from .ray_process import run_ray

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return _fail("run-ray needs the `ray start ...` command after --")
    return run_ray(
        command,
        stop_timeout_s=args.stop_timeout,
        haproxy_binary=args.haproxy_binary,
        state_dir=args.state_dir,
        ray=args.ray,
        haproxy_dirs=args.haproxy_dir,
    )


def cmd_syslog(args: argparse.Namespace) -> int:
    from .syslog_receiver import default_tag, open_output, serve

    port = args.port
    if port is None:
        # A sidecar (KubeRay) that never talks to Ray has no token, and needs none.
        effective = _load(None, check_token=False)
        if effective is None:
            return EXIT_INVALID_SETTINGS
        port = effective.values.syslog_port
    return serve(args.host, port, args.tag or default_tag(), open_output(args.output))


def cmd_serve_up(args: argparse.Namespace) -> int:
    from .auth_token import TokenFileError, cluster_token
    from .serve_up import run
    from .supervisor_config import adopt_process_environment, dashboard_url

    effective = _load(None)
    if effective is None:
        return EXIT_INVALID_SETTINGS
    adopt_process_environment(effective)  # the same whether supervisord or an operator runs it
    values = effective.values
    try:
        token = cluster_token(values.auth_mode, values.auth_token, values.auth_token_path)
    except TokenFileError as exc:  # changed since the settings were checked
        return _fail(f"RAY_AUTH_TOKEN_PATH={values.auth_token_path}: {exc}", EXIT_INVALID_SETTINGS)
    return run(
        http_port=args.http_port or values.http_port,
        dashboard_url=args.dashboard_url
        or dashboard_url(values.dashboard_host, values.dashboard_port),
        state_dir=args.state_dir or values.state_dir,
        timeout_s=args.timeout or values.serve_deploy_timeout_s,
        config_path=args.config or values.serve_config,
        http_host=args.http_host,
        grpc_port=values.grpc_port if args.grpc_port is None else args.grpc_port,
        grpc_servicer_functions=values.grpc_servicer_functions,
        token=token,
        haproxy_mode=values.enable_ha_proxy,
        pythonpath=values.pythonpath,
        force=args.force,
    )


def cmd_watchdog(args: argparse.Namespace) -> int:
    from .watchdog import main as watchdog_main

    return watchdog_main(args.program)


# --- parser -----------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """The top-level parser; knows its command names for the exec pass-through."""

    commands: list[str]


def build_parser() -> Parser:
    parser = Parser(
        prog="ray-serve-haproxy",
        description="Ray Serve in HAProxy mode in a container. Settings are environment "
        "variables (see `config`). An unknown first argument is executed as a program.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = []

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        parser.commands.append(name)
        return command

    kuberay_help = "a head or worker node from KUBERAY_GEN_RAY_START_CMD (KubeRay's `ray start`)"
    nodes: list[tuple[str, Callable[[argparse.Namespace], int], str]] = [
        (r.value, functools.partial(cmd_node, r), f"a {r.value} node") for r in NODE_ROLES
    ]
    nodes.append(("kuberay", cmd_kuberay, kuberay_help))
    for name, handler, what in nodes:
        node = add(name, handler, f"validate settings, then run {what} under supervisord (exec)")
        node.add_argument(
            "--render-only",
            action="store_true",
            help="prepare directories and write supervisord.conf, print its path, start nothing",
        )

    entry = add(
        "entry",
        cmd_entry,
        "validate settings, then run HAProxy in front of every node (RSH_ENTRY_NODES) under "
        "supervisord (exec)",
    )
    entry.add_argument(
        "--render-only",
        action="store_true",
        help="write the entry's haproxy.cfg and supervisord.conf, print their paths, start nothing",
    )

    check = add("check", cmd_check, "validate settings and the environment (haproxy, ports...)")
    check.add_argument(
        "--role", choices=[r.value for r in Role], help="default: recorded, else head"
    )
    check.add_argument("--no-ports", action="store_true", help="skip the free-port checks")

    config = add("config", cmd_config, "show effective settings with their source")
    config.add_argument("--role", choices=[r.value for r in Role], help="validate for this role")
    output = config.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument("--env", action="store_true", help="Ray's environment as `export` lines")

    status = add("status", cmd_status, "HAProxy backends and servers from the admin socket(s)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--socket", help="query this admin socket instead of searching")

    health = add("healthcheck", cmd_healthcheck, "exit 0 when healthy, 1 when not")
    which = health.add_mutually_exclusive_group()
    which.add_argument("--liveness", action="store_true", help="only: Ray's processes run")
    which.add_argument("--readiness", action="store_true", help="only: HAProxy answers /-/healthz")
    health.add_argument("--role", choices=[r.value for r in Role], help="default: recorded role")
    health.add_argument("--quiet", action="store_true", help="no output, exit status only")

    add("drain", cmd_drain, "stop Ray gracefully and leave no HAProxy behind (preStop)")

    table = add("settings-table", cmd_settings_table, "print the settings reference (docs/)")
    target = table.add_mutually_exclusive_group()
    target.add_argument("--write", metavar="FILE", help="replace the table block in FILE")
    target.add_argument("--check", metavar="FILE", help="exit 1 if FILE's block is outdated")

    sbom = add("sbom", cmd_sbom, "print the image's bill of materials (CycloneDX JSON)")
    sbom.add_argument("--summary", action="store_true", help="a table: kind, name, version, sha256")
    sbom.add_argument("--path", help="another document; default: the one the build wrote")

    run_ray = add("run-ray", cmd_run_ray, "(internal) run `ray start --block` with clean stop")
    run_ray.add_argument(
        "--stop-timeout", type=int, required=True, help="seconds for the whole graceful stop"
    )
    run_ray.add_argument("--state-dir", required=True, help="where run-ray.pid goes")
    run_ray.add_argument("--haproxy-binary", help="HAProxy executable whose processes are ours")
    run_ray.add_argument("--ray", help="`ray` executable for `ray stop`; default: the venv's")
    run_ray.add_argument(
        "--haproxy-dir",
        action="append",
        default=[],
        help="where Ray puts HAProxy's per-node directories; earlier ones are pruned at start",
    )
    run_ray.add_argument("command", nargs=argparse.REMAINDER, help="-- ray start --block ...")

    syslog = add("syslog", cmd_syslog, "(internal) print HAProxy's UDP syslog to stdout")
    syslog.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    syslog.add_argument("--port", type=int, help="default: RAY_SERVE_HAPROXY_SYSLOG_PORT")
    syslog.add_argument("--tag", help="line prefix; default: haproxy[<hostname>]")
    syslog.add_argument(
        "--output", help="file to append the lines to (e.g. /proc/1/fd/1); default: stdout"
    )

    serve_up = add("serve-up", cmd_serve_up, "(internal) start Serve, deploy RSH_SERVE_CONFIG")
    serve_up.add_argument("--http-port", type=int, help="default: RSH_HTTP_PORT")
    serve_up.add_argument("--http-host", default="0.0.0.0", help="default: 0.0.0.0")
    serve_up.add_argument("--grpc-port", type=int, help="default: RSH_GRPC_PORT (0: gRPC off)")
    serve_up.add_argument("--dashboard-url", help="default: from RSH_DASHBOARD_HOST/PORT")
    serve_up.add_argument("--state-dir", help="default: RSH_STATE_DIR")
    serve_up.add_argument("--timeout", type=int, help="default: RSH_SERVE_DEPLOY_TIMEOUT_S")
    serve_up.add_argument("--config", help="default: RSH_SERVE_CONFIG")
    serve_up.add_argument(
        "--force", action="store_true", help="deploy the config even if it is unchanged"
    )

    generate = add(
        "sbom-generate", cmd_sbom_generate, "(internal, image build) write the bill of materials"
    )
    generate.add_argument("--output", help="default: where `sbom` reads it")
    generate.add_argument("--image-name", default="ray-serve-haproxy")
    generate.add_argument("--image-version", default="dev")
    generate.add_argument("--base-image", default="")
    generate.add_argument("--platform", default="", help="e.g. linux/arm64")
    generate.add_argument(
        "--pip-report", action="append", default=[], help="`pip install --report` file (repeat)"
    )
    generate.add_argument(
        "--wheel-dir", action="append", default=[], help="directory of installed wheels (repeat)"
    )
    generate.add_argument("--haproxy", default="/usr/local/bin/haproxy", help="HAProxy binary")
    generate.add_argument(
        "--haproxy-source-sha256", required=True, help="`sha256sum` line of the source tarball"
    )
    generate.add_argument(
        "--haproxy-security", help="patch level the build wrote (haproxy/security-floor.sh)"
    )

    watchdog = add("watchdog", cmd_watchdog, "(internal) supervisord event listener")
    watchdog.add_argument("--program", default="ray", help="stop supervisord when it exits")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if args_list and not args_list[0].startswith("-") and args_list[0] not in parser.commands:
        try:
            os.execvp(args_list[0], args_list)
        except OSError as exc:
            return _fail(f"{args_list[0]!r} is neither a command nor a program ({exc})", 127)
    args = parser.parse_args(args_list)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)
