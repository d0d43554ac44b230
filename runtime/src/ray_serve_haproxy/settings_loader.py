"""Environment -> effective settings, each with its source, or every error at once.

Nothing here starts anything: `head`, `worker`, `check` and `config` all call
`load_settings` first and stop (exit 2) on `InvalidSettings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .auth_token import TokenFileError, hidden, read_token_file
from .host_facts import HostFacts
from .settings import (
    MAX_DERIVED_NBTHREAD,
    OBJECT_STORE_MINIMUM_BYTES,
    SERVE_KEEP_ALIVE_S,
    Settings,
    derived_hard_stop_after,
    haproxy_fds_needed,
    max_maxconn_for,
    specs,
)
from .settings_rules import (
    FALLBACK_PROXY_PORTS,
    INVALID,
    Role,
    RuleContext,
    SettingError,
    Source,
    check_rules,
    log_target_local_port,
    render,
)
from .value_types import InvalidValue

__all__ = [
    "FALLBACK_PROXY_PORTS",
    "EffectiveSettings",
    "InvalidSettings",
    "Role",
    "SettingError",
    "Source",
    "load_settings",
    "parse_settings",
]

SHM_FRACTION_FOR_OBJECT_STORE = 0.3


class InvalidSettings(Exception):
    def __init__(self, errors: list[SettingError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def report(self) -> str:
        lines = [f"ray-serve-haproxy: {len(self.errors)} invalid setting(s); nothing was started:"]
        lines += [f"  - {error}" for error in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True)
class EffectiveSettings:
    values: Settings
    sources: Mapping[str, Source]  # by variable name
    # How a derived value was computed, by variable name (shown by `config`).
    derivations: Mapping[str, str] = field(default_factory=dict)

    def spec_value(self, field_name: str) -> Any:
        return getattr(self.values, field_name)

    def text(self, variable: str) -> str:
        """The value of `variable` as a string ("" when unset)."""
        for name, spec in specs():
            if spec.env == variable:
                return render(spec, getattr(self.values, name))
        raise KeyError(variable)

    def rows(self) -> list[tuple[str, str, Source]]:
        """(variable, value, source) of every setting, in declaration order."""
        return [
            (spec.env, render(spec, getattr(self.values, name)), self.sources[spec.env])
            for name, spec in specs()
        ]

    def ray_env(self) -> dict[str, str]:
        """The environment `ray start` needs so Ray's constants see the effective values."""
        env: dict[str, str] = {}
        for name, spec in specs():
            if not spec.ray:
                continue
            text = render(spec, getattr(self.values, name))
            if text:
                env[spec.env] = text
        return env

    @property
    def syslog_receiver_port(self) -> int | None:
        """Port the runtime's syslog receiver listens on, or None when logs go elsewhere."""
        if not self.values.enable_ha_proxy:
            return None
        port = log_target_local_port(self.values.log_target)
        return port if port == self.values.syslog_port else None


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    role: Role | None = None,
    facts: HostFacts | None = None,
    check_token: bool = True,
) -> EffectiveSettings:
    """Parse, derive and validate every setting; raises InvalidSettings listing all errors.

    check_token=False skips reading the token file, for commands that never talk to Ray's
    control plane (the syslog receiver, `status`, `drain`), e.g. in a sidecar that has none;
    the entry role never reads it.
    """
    ctx = parse_settings(environ, role=role, facts=facts)
    check_rules(ctx)
    # The entry runs no Ray and only forwards to HAProxy's client ports: it needs no token.
    if check_token and role != Role.ENTRY:
        _check_token_file(ctx)
    if ctx.errors:
        raise InvalidSettings(ctx.errors)
    return EffectiveSettings(Settings(**ctx.values), ctx.sources, ctx.derivations)


def parse_settings(
    environ: Mapping[str, str] | None = None,
    *,
    role: Role | None = None,
    facts: HostFacts | None = None,
) -> RuleContext:
    """Parse and derive every setting, without the rules between them: the context the rules
    (settings_rules) check, with the parse errors so far."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    errors: list[SettingError] = []

    for name, spec in specs():
        raw = env.get(spec.env)
        if raw is not None and raw.strip():  # an empty variable counts as unset
            sources[spec.env] = Source.ENVIRONMENT
            try:
                values[name] = spec.type.parse(raw)
            except InvalidValue as exc:
                shown = hidden(raw.strip()) if spec.secret else raw
                errors.append(SettingError(spec.env, shown, str(exc)))
                values[name] = INVALID
        elif spec.derived is not None:
            sources[spec.env] = Source.DERIVED
            values[name] = None  # filled in below
        else:
            sources[spec.env] = Source.DEFAULT
            values[name] = spec.default

    ctx = RuleContext(values, sources, role, facts or HostFacts.probe(), env, errors)
    _derive(ctx, values, sources)
    return ctx


def _derive(ctx: RuleContext, values: dict[str, Any], sources: dict[str, Source]) -> None:
    facts = ctx.facts
    if values["nbthread"] is None:
        values["nbthread"] = max(1, min(MAX_DERIVED_NBTHREAD, facts.cpus))
    # The guide's 20000 connections need ~50000 open files; fit the default to the limit.
    if (
        sources["RAY_SERVE_HAPROXY_MAXCONN"] == Source.DEFAULT
        and facts.nofile_hard is not None
        and haproxy_fds_needed(values["maxconn"]) > facts.nofile_hard
    ):
        values["maxconn"] = max_maxconn_for(facts.nofile_hard)
        sources["RAY_SERVE_HAPROXY_MAXCONN"] = Source.DERIVED
    if values["object_store_memory"] is None:
        shm = facts.shm_bytes or 0
        values["object_store_memory"] = max(
            OBJECT_STORE_MINIMUM_BYTES, int(shm * SHM_FRACTION_FOR_OBJECT_STORE)
        )
    if values["haproxy_binary_path"] is None:
        values["haproxy_binary_path"] = facts.haproxy_binary or ""
    if values["log_target"] is None:
        values["log_target"] = "stdout"
    if values["hard_stop_after_s"] is None:
        server, client = values["timeout_server_s"], values["timeout_client_s"]
        if not ctx.valid("timeout_server_s", "timeout_client_s"):
            values["hard_stop_after_s"] = INVALID
        else:
            values["hard_stop_after_s"] = derived_hard_stop_after(server, client)
            wait = (
                f"RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S {server}"
                if server is not None
                else f"RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S {client} (no server timeout)"
            )
            ctx.derivations["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"] = (
                f"{wait} + Serve's keep-alive {SERVE_KEEP_ALIVE_S} = {values['hard_stop_after_s']}s"
            )


def _check_token_file(ctx: RuleContext) -> None:
    """In token mode without RAY_AUTH_TOKEN, the file Ray will read must hold a good token:
    Ray itself would only crash at start (RAY_CHECK) or, worse, accept a guessable one."""
    if not ctx.valid("auth_mode", "auth_token", "auth_token_path"):
        return
    values = ctx.values
    if values["auth_mode"] != "token" or values["auth_token"] is not None:
        return
    path = values["auth_token_path"]
    try:
        read_token_file(path)
    except TokenFileError as exc:
        problem = str(exc)
        if problem == "no such file":
            problem += (
                "; allowed: a file holding the cluster's token (mount a Docker or Kubernetes "
                "secret there), or the token in RAY_AUTH_TOKEN, or RAY_AUTH_MODE=disabled to "
                "run without authentication"
            )
        ctx.errors.append(SettingError("RAY_AUTH_TOKEN_PATH", path, problem))
