"""Head one-shot: start Serve so the HAProxy managers come up, deploy RSH_SERVE_CONFIG.

Runs as supervisord's `serve-up` program next to Ray. Waits for the cluster, starts Serve with
HTTP on 0.0.0.0:RSH_HTTP_PORT (and gRPC on RSH_GRPC_PORT when there are servicer functions),
deploys the config through the dashboard's REST API (what `serve deploy` does) when it is
new or changed, and waits until every application is RUNNING and HAProxy answers /-/healthz and
lists its routes. Whether to deploy is declared_config.decide's table: the last config deployed
is recorded in the GCS, so a head that restarts on fault-tolerant GCS storage with the same file
leaves Serve's recovered applications (and their replicas) alone, and a changed file is
deployed (docs/serve-config-lifecycle.md). Leaves RSH_STATE_DIR/serve-progress while it works,
then serve-ready, or serve-failed with the reason (and exits 1). Ray is imported only here, and
only when the command runs.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

from .app_scan import startup_warnings
from .auth_token import Secret, bearer_headers
from .config_record import forget_record, read_record, write_record
from .declared_config import (
    Decision,
    Reason,
    Record,
    RecordState,
    decide,
    deploy_report,
    fingerprint,
    option_warning,
)
from .placement import asks_of, nodes_of, problems, report
from .serve_apps import short_message
from .state_dir import SERVE_FAILED, SERVE_PROGRESS, SERVE_READY, clear_markers, mark

POLL_S = 1.0
# HAProxy's first config is written within seconds of Serve starting; give it this at least.
MIN_HEALTHZ_WAIT_S = 30.0
# What Serve's proxies (HAProxy's generated rules and the Python proxy alike) answer on
# /-/healthz, with 503, while no application is deployed (ray/serve/_private/constants.py).
NO_ROUTES_MESSAGE = "Route table is not populated yet."


class ServeUpError(Exception):
    """A failure with a message meant for the operator."""


def log(message: str) -> None:
    print(f"serve-up: {message}", flush=True)


class Progress:
    """What serve-up is doing, in RSH_STATE_DIR/serve-progress for the healthcheck to print."""

    def __init__(self, state_dir: str | None) -> None:
        self.state_dir = state_dir
        self.last = ""

    def __call__(self, text: str) -> None:
        if self.state_dir and text != self.last:
            mark(self.state_dir, SERVE_PROGRESS, text)
            self.last = text


def load_config(
    path: str,
    http_host: str,
    http_port: int,
    grpc_port: int = 0,
    grpc_servicer_functions: Sequence[str] = (),
) -> dict[str, Any]:
    """The Serve config with http_options forced to where this image serves, and grpc_options
    merged with the runtime's gRPC settings (merge_grpc_options)."""
    yaml = importlib.import_module("yaml")  # PyYAML comes with Ray
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ServeUpError(f"cannot read Serve config {path}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("applications"), list):
        raise ServeUpError(f"{path} is not a Serve config: no 'applications' list")
    http_options = config.get("http_options") or {}
    if not isinstance(http_options, dict):
        raise ServeUpError(f"{path}: http_options is not a mapping")
    forced = {"host": http_host, "port": http_port}
    changed = {k: v for k, v in http_options.items() if k in forced and v != forced[k]}
    if changed:
        log(f"overriding http_options {changed} with {forced}")
    config["http_options"] = {**http_options, **forced}
    grpc_options = merge_grpc_options(
        config.get("grpc_options"), grpc_port, grpc_servicer_functions, source=path
    )
    config.pop("grpc_options", None)
    if grpc_options is not None:
        config["grpc_options"] = grpc_options
    return config


def merge_grpc_options(
    from_config: Any,
    grpc_port: int,
    servicer_functions: Sequence[str],
    *,
    source: str = "the Serve config",
) -> dict[str, Any] | None:
    """Serve's grpc_options from the config file's and the runtime's settings, or None when
    gRPC stays off.

    Like http_options' port, the port is the runtime's (RSH_GRPC_PORT: what HAProxy binds and
    what compose publishes); the servicer functions are the config's plus RSH_GRPC_SERVICER_
    FUNCTIONS; other keys (request_timeout_s, enable_reflection) are the config's. gRPC is on
    when the port is not 0 and there is at least one servicer function (Ray's own rule).
    """
    if from_config is None:
        from_config = {}
    if not isinstance(from_config, dict):
        raise ServeUpError(f"{source}: grpc_options is not a mapping")
    listed = from_config.get("grpc_servicer_functions") or []
    if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
        raise ServeUpError(f"{source}: grpc_options.grpc_servicer_functions is not a list of str")
    functions = list(dict.fromkeys([*listed, *servicer_functions]))
    if grpc_port == 0:
        if functions:
            log(f"RSH_GRPC_PORT=0: gRPC is off; not registering {', '.join(functions)}")
        return None
    if not functions:
        return None  # nothing to serve: Ray would not open the port either
    if "port" in from_config and from_config["port"] != grpc_port:
        log(f"overriding grpc_options port {from_config['port']} with {grpc_port}")
    return {**from_config, "port": grpc_port, "grpc_servicer_functions": functions}


def check_importable(functions: Sequence[str]) -> None:
    """Imports every servicer function here first: Ray would only log a warning in each proxy
    and replica, long after deploying, and serve nothing on the gRPC port."""
    for path in functions:
        module_name, _, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
        try:
            function = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ServeUpError(
                f"gRPC servicer function {path} cannot be imported ({exc}); check "
                "RSH_GRPC_SERVICER_FUNCTIONS / grpc_options and that RSH_PYTHONPATH holds its "
                "module on every node"
            ) from None
        if not callable(function):
            raise ServeUpError(f"gRPC servicer function {path} is not callable")


def app_names(config: dict[str, Any]) -> list[str]:
    return [str(app.get("name", "default")) for app in config["applications"]]


def live_configs(
    dashboard_url: str, deadline: float, token: Secret | None = None
) -> dict[str, Any]:
    """Serve's applications now: name -> the config it deployed them with (None if none)."""
    sdk = importlib.import_module("ray.dashboard.modules.serve.sdk")
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = sdk.ServeSubmissionClient(dashboard_url, headers=bearer_headers(token))
            apps = client.get_serve_details().get("applications") or {}
            return {str(n): (a or {}).get("deployed_app_config") for n, a in apps.items()}
        except Exception as exc:  # dashboard still starting
            last = exc
            time.sleep(2)
    raise ServeUpError(f"could not read Serve's applications from {dashboard_url}: {last}")


def _connect(ray: ModuleType, deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            ray.init(address="auto", logging_level=logging.WARNING, log_to_driver=False)
            return
        except (ConnectionError, RuntimeError) as exc:  # no cluster yet
            last = exc
            time.sleep(2)
    raise ServeUpError(f"no Ray cluster to connect to (last error: {last})")


def _deploy(
    dashboard_url: str, config: dict[str, Any], deadline: float, token: Secret | None = None
) -> None:
    sdk = importlib.import_module("ray.dashboard.modules.serve.sdk")
    # Our own header, not Ray's lookup: the token this runtime validated is the one sent.
    headers = bearer_headers(token)
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            sdk.ServeSubmissionClient(dashboard_url, headers=headers).deploy_applications(config)
            return
        except Exception as exc:  # dashboard still starting, or the config was refused
            last = exc
            if re.search(r"status code 40[13]|Authentication (required|failed)", str(exc)):
                raise ServeUpError(
                    f"the dashboard refused our token (RAY_AUTH_TOKEN_PATH / RAY_AUTH_TOKEN): "
                    f"every node must have the same token: {exc}"
                ) from None
            if re.search(r"status code 4\d\d", str(exc)):  # refused: retrying will not help
                raise ServeUpError(f"the dashboard refused the Serve config: {exc}") from None
            time.sleep(2)
    raise ServeUpError(f"could not submit the Serve config to {dashboard_url}: {last}")


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def placement_problem(ray: ModuleType, config: dict[str, Any]) -> str | None:
    """Why the config's replicas cannot be placed on the cluster's nodes now (None: they fit,
    or the nodes cannot be read)."""
    try:
        nodes = nodes_of(ray.nodes())
    except Exception as exc:  # a diagnosis must never fail the deploy itself
        log(f"cannot read the cluster's nodes for the placement check: {exc}")
        return None
    asks = asks_of(config)
    return report(asks, nodes) if problems(asks, nodes) else None


def _diagnose(ray: ModuleType, config: dict[str, Any] | None) -> str | None:
    return placement_problem(ray, config) if config is not None else None


def app_states(seen: dict[str, tuple[str, str]], names: Sequence[str]) -> str:
    """`name=STATUS (message)` of every application in `names` not RUNNING (`missing`: Serve
    has no such application), then how many are; the message cut to its gist."""
    waiting = []
    for name in names:
        if name not in seen:
            waiting.append(f"{name}=missing")
            continue
        status, message = seen[name]
        if status != "RUNNING":
            gist = short_message(message)
            waiting.append(f"{name}={status}" + (f" ({gist})" if gist else ""))
    running = len(names) - len(waiting)
    return ", ".join([*waiting, f"{running} of {len(names)} RUNNING"])


def _wait_running(
    serve: ModuleType,
    names: list[str],
    deadline: float,
    timeout_s: int,
    diagnose: Callable[[], str | None] = lambda: None,
    progress: Callable[[str], None] = lambda text: None,
) -> None:
    seen: dict[str, tuple[str, str]] = {}
    while True:
        applications = serve.status().applications
        seen = {
            name: (_status_text(app.status), str(app.message or ""))
            for name, app in applications.items()
            if name in names
        }
        failed = [name for name, (status, _) in seen.items() if status == "DEPLOY_FAILED"]
        if failed:
            for name in failed:  # the whole message (a traceback) for the log; its gist below
                log(f"application {name!r} is DEPLOY_FAILED: {seen[name][1]}")
            raise ServeUpError(f"applications not RUNNING: {app_states(seen, names)}")
        if all(seen.get(name, ("", ""))[0] == "RUNNING" for name in names):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            message = f"applications not RUNNING after {timeout_s}s: {app_states(seen, names)}"
            diagnosis = diagnose()
            raise ServeUpError(f"{message}; {diagnosis}" if diagnosis else message)
        progress(f"waiting for applications ({left:.0f} s left): {app_states(seen, names)}")
        time.sleep(POLL_S)


def _wait_healthz(http_port: int, deadline: float, *, no_routes_ok: bool = False) -> str:
    """Waits until Serve's proxy on this node answers /-/healthz with 200 and lists its routes
    (HAProxy may listen, and on the head even report healthy, before Serve sent it any), or,
    with `no_routes_ok`, with the 503 of a Serve that has no application yet; returns the
    answer."""
    url = f"http://127.0.0.1:{http_port}/-/healthz"
    routes_url = f"http://127.0.0.1:{http_port}/-/routes"
    deadline = max(deadline, time.monotonic() + MIN_HEALTHZ_WAIT_S)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                routes = requests.get(routes_url, timeout=2)
                if no_routes_ok or (routes.status_code == 200 and routes.text.startswith('{"/')):
                    return "200"
                last = f"/-/routes: {routes.status_code} {routes.text[:120]!r}"
            else:
                last = f"{response.status_code} {response.text[:120]!r}"
                if no_routes_ok and response.status_code == 503 and NO_ROUTES_MESSAGE in last:
                    return last
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(POLL_S)
    raise ServeUpError(f"{url} did not answer 200 with routes listed (last: {last})")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Plan:
    """What serve_up waits for after the decision, and what it records once that runs."""

    names: list[str]
    summary: str
    record: Record | None  # written (as applied) once `names` run; None: nothing to record


def apply_declared(
    ray: ModuleType,
    config: dict[str, Any],
    config_path: str,
    existing: list[str],
    *,
    dashboard_url: str,
    token: Secret | None,
    deadline: float,
    timeout_s: int,
    force: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> Plan:
    """Deploys the declared config when declared_config.decide says so, and logs why."""
    record = read_record()
    live = live_configs(dashboard_url, deadline, token) if existing else {}
    decision: Decision = decide(config, record, live, force=force)
    if record is not None:
        log(
            f"on record: {record.source} (sha256 {fingerprint(record.config)}), "
            f"{record.state.value} {record.at}"
        )
    log(f"declared {config_path} (sha256 {fingerprint(config)}): {decision.reason.value}")
    warning = option_warning(record, config)
    if warning:
        log(warning)
    if not decision.deploy:
        if existing:
            log(f"Serve's applications keep their replicas: {', '.join(existing)}")
        adopt = Record(config, RecordState.APPLIED, config_path, _now())
        kept = f"recovered applications RUNNING: {', '.join(existing)}"
        return Plan(existing, kept, adopt if decision.reason == Reason.NO_RECORD_MATCHES else None)
    names = app_names(config)
    for line in deploy_report(config, record, live):
        log(line)
    submitted = Record(config, RecordState.SUBMITTED, config_path, _now())
    if names or live:
        # Said before waiting: Serve itself only shows the replicas as PENDING. Workers may
        # still be joining, so this is a warning, and the verdict comes at the timeout.
        problem = placement_problem(ray, config)
        if problem:
            log(f"placement: {problem}; waiting up to {timeout_s}s for nodes that fit")
        progress(f"deploying {config_path} (applications: {', '.join(names) or 'none'})")
        _deploy(dashboard_url, config, deadline, token)
        write_record(submitted)
    return Plan(
        names,
        f"{config_path} RUNNING: {', '.join(names)}",
        submitted.with_state(RecordState.APPLIED),
    )


def serve_up(
    *,
    http_port: int,
    dashboard_url: str,
    timeout_s: int,
    config_path: str | None,
    http_host: str = "0.0.0.0",
    grpc_port: int = 0,
    grpc_servicer_functions: Sequence[str] = (),
    token: Secret | None = None,
    haproxy_mode: bool = False,
    pythonpath: str | None = None,
    force: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> str:
    """Does the work; returns a summary for the ready marker, raises ServeUpError."""
    config = (
        load_config(config_path, http_host, http_port, grpc_port, grpc_servicer_functions)
        if config_path
        else None
    )
    if config is not None and haproxy_mode:
        # Said before anything starts, by name: an app HAProxy mode serves differently.
        for line in startup_warnings(config, pythonpath):
            log(line)
    # Serve's gRPC options cannot change once it runs: they go to serve.start, and the same
    # ones to the deploy (a differing grpc_options there would only be warned about).
    grpc_options = (
        config.get("grpc_options")
        if config is not None
        else merge_grpc_options(None, grpc_port, grpc_servicer_functions, source="environment")
    )
    if grpc_options:
        check_importable(grpc_options["grpc_servicer_functions"])
    deadline = time.monotonic() + timeout_s
    ray = importlib.import_module("ray")
    serve = importlib.import_module("ray.serve")
    log("waiting for the Ray cluster")
    progress("waiting for the Ray cluster")
    _connect(ray, deadline)
    try:
        listeners = f"HTTP on {http_host}:{http_port}"
        if grpc_options:
            functions = ", ".join(grpc_options["grpc_servicer_functions"])
            listeners += f", gRPC on {http_host}:{grpc_port} ({functions})"
        log(f"starting Serve with {listeners}")
        progress("starting Serve")
        # Serve fixes its HTTP options when it starts and only warns about different ones in a
        # later deploy: the config's (request_timeout_s, keep_alive_timeout_s, root_path...)
        # must go to serve.start, or they would be silently ignored.
        http_options = (
            config["http_options"] if config is not None else {"host": http_host, "port": http_port}
        )
        serve.start(http_options=http_options, grpc_options=grpc_options)
        summary = f"Serve started, {listeners}"
        existing = sorted(serve.status().applications)
        deadline = time.monotonic() + timeout_s
        if config is None or config_path is None:
            forget_record()
            log(f"{Reason.NO_CONFIG.value}; Serve's applications: {', '.join(existing) or 'none'}")
            plan = Plan(existing, f"applications RUNNING: {', '.join(existing)}", None)
        else:
            plan = apply_declared(
                ray,
                config,
                config_path,
                existing,
                dashboard_url=dashboard_url,
                token=token,
                deadline=deadline,
                timeout_s=timeout_s,
                force=force,
                progress=progress,
            )
        if plan.names:
            summary += f"; {plan.summary}"
            _wait_running(
                serve, plan.names, deadline, timeout_s, lambda: _diagnose(ray, config), progress
            )
        if plan.record is not None:
            write_record(plan.record)
        # Without an application Serve's proxy answers 503 "Route table is not populated yet"
        # (HAProxy mode; README): Serve is up, and the readiness probe stays red until a
        # deploy (`serve deploy`, the dashboard's REST API) adds a route.
        progress(f"waiting for HAProxy on 127.0.0.1:{http_port} to answer and list its routes")
        answer = _wait_healthz(http_port, deadline, no_routes_ok=not plan.names)
        if answer != "200":
            summary += f"; no application yet (/-/healthz answers {answer})"
        return summary
    finally:
        ray.shutdown()


def run(
    *,
    http_port: int,
    dashboard_url: str,
    state_dir: str,
    timeout_s: int,
    config_path: str | None,
    http_host: str = "0.0.0.0",
    grpc_port: int = 0,
    grpc_servicer_functions: Sequence[str] = (),
    token: Secret | None = None,
    haproxy_mode: bool = False,
    pythonpath: str | None = None,
    force: bool = False,
) -> int:
    clear_markers(state_dir)
    try:
        summary = serve_up(
            http_port=http_port,
            dashboard_url=dashboard_url,
            timeout_s=timeout_s,
            config_path=config_path,
            http_host=http_host,
            grpc_port=grpc_port,
            grpc_servicer_functions=grpc_servicer_functions,
            token=token,
            haproxy_mode=haproxy_mode,
            pythonpath=pythonpath,
            force=force,
            progress=Progress(state_dir),
        )
    except ServeUpError as exc:
        reason = str(exc)
    except Exception as exc:  # anything else must still leave a marker the probes can read
        traceback.print_exc()
        reason = f"{type(exc).__name__}: {exc}"
    else:
        mark(state_dir, SERVE_READY, summary)
        log(f"ready: {summary}")
        return 0
    mark(state_dir, SERVE_FAILED, reason)
    log(f"FAILED: {reason}")
    return 1
