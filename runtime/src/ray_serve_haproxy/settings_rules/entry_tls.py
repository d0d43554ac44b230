"""Rules of the entry's TLS settings (docs/tls.md), only for `entry`: they agree with each other,
and every file passes tls_files.py's checks, so that a bad certificate stops the start with its
setting and its file named (exit 2)."""

from __future__ import annotations

import re

from .context import Role, RuleContext

# Settings that mean something only with RSH_ENTRY_TLS_CERT.
NEEDS_CERT = (
    "entry_tls_key",
    "entry_tls_issuer_ca",
    "entry_tls_client_ca",
    "entry_plain_http",
    "entry_hsts_max_age_s",
    "entry_tls_redirect_port",
)
TLS_FIELDS = (
    "entry_tls_cert",
    "entry_tls_server_names",
    "entry_https_port",
    "entry_grpc_tls_port",
    *NEEDS_CERT,
)
FILES_ALLOWED = "PEM files that pass the checks of docs/tls.md"
# HAProxy reads the client CA's path unquoted from its config (`ca-file`).
_UNQUOTABLE = re.compile(r"[\s'\"#\\]")


def entry_tls_checked(ctx: RuleContext) -> None:
    if ctx.role != Role.ENTRY or not ctx.valid(*TLS_FIELDS):
        return
    values = ctx.values
    if values["entry_tls_cert"] is None:
        for name in NEEDS_CERT:
            if values[name] is not None:
                ctx.error(name, "only with RSH_ENTRY_TLS_CERT (TLS is off); allowed: unset")
        return
    if values["entry_plain_http"] is None:
        ctx.error(
            "entry_plain_http",
            "required with RSH_ENTRY_TLS_CERT; allowed: `off`, `redirect` or `serve`",
            value="",
        )
    client_ca = values["entry_tls_client_ca"]
    if client_ca and _UNQUOTABLE.search(client_ca):
        ctx.error(
            "entry_tls_client_ca",
            "contains a space, quote, '#' or backslash; allowed: a path without them",
        )
    _tls_ports_of_their_own(ctx)
    # Imported here: `cryptography` takes ~0.4 s of CPU to import, and every healthcheck
    # probe loads the settings; only an entry with TLS needs it.
    from ..tls_files import check_files

    result = check_files(
        values["entry_tls_cert"],
        values["entry_tls_key"],
        values["entry_tls_issuer_ca"],
        client_ca,
        values["entry_tls_server_names"],
    )
    field_of = {ctx.env_of(name): name for name in TLS_FIELDS}
    for problem in result.problems:
        # "(system bundle)": the issuer setting left unset.
        name = field_of.get(problem.setting, "entry_tls_issuer_ca")
        ctx.error(name, f"{problem}; allowed: {FILES_ALLOWED}", value=values[name] or "")


def _tls_ports_of_their_own(ctx: RuleContext) -> None:
    taken = {
        name: ctx.values[name]
        for name in ("http_port", "grpc_port", "metrics_port")
        if ctx.valid(name) and ctx.values[name]
    }
    for name in ("entry_https_port", "entry_grpc_tls_port"):
        port = ctx.values[name]
        if not port:
            continue
        clash = [other for other, used in taken.items() if used == port]
        if clash:
            ctx.error(name, f"the same port as {ctx.env_of(clash[0])}; allowed: a port of its own")
        taken[name] = port
