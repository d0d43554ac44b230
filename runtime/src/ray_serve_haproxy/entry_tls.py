"""TLS at the entry: the composed certificate directory and the template's values (the settings'
checks: settings_rules/entry_tls.py).

HAProxy loads one PEM per certificate (chain, then key) from a private directory under
RSH_STATE_DIR, never the operator's files themselves: every file is checked first (tls_files.py),
a Secret's separate tls.crt/tls.key become the one file HAProxy wants, and the renewal watcher
(tls_watch.py) hands HAProxy new files over its admin socket after the same checks.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import Settings
from .state_dir import write_atomic

TLS_DIR = "tls"
CERTS_DIR = "certs"
# Mozilla's "intermediate" server profile without DHE (no dhparam to manage): TLS 1.2 with
# forward-secret AEAD suites only, TLS 1.3's default suites. Browsers, curl, grpcio and every
# maintained client of the last decade speak these.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"


def certs_dir(state_dir: str) -> Path:
    return Path(state_dir) / TLS_DIR / CERTS_DIR


@dataclass(frozen=True)
class TlsPlan:
    """What the template needs to know about TLS; `enabled` False renders today's entry."""

    enabled: bool
    certs_dir: str = ""
    https_port: int = 0
    grpc_tls_port: int | None = None
    plain_http: str = "serve"
    redirect_port: int = 443
    hsts_max_age_s: int | None = None
    client_ca: str | None = None
    ciphers: str = TLS12_CIPHERS
    ciphersuites: str = TLS13_CIPHERSUITES

    def template_values(self) -> dict[str, Any]:
        return {"tls": self}


def plan(values: Settings, state_dir: str | None = None) -> TlsPlan:
    if values.entry_tls_cert is None:
        return TlsPlan(enabled=False)
    return TlsPlan(
        enabled=True,
        certs_dir=str(certs_dir(state_dir or values.state_dir)),
        https_port=values.entry_https_port,
        grpc_tls_port=values.entry_grpc_tls_port if values.grpc_port else None,
        plain_http=values.entry_plain_http or "off",
        redirect_port=values.entry_tls_redirect_port or values.entry_https_port,
        hsts_max_age_s=values.entry_hsts_max_age_s,
        client_ca=values.entry_tls_client_ca,
    )


def write_certs(values: Settings, now: dt.datetime | None = None) -> list[str]:
    """Checks the files again and writes one composed PEM per certificate (mode 600) into the
    private directory HAProxy loads; returns the lines to log (expiry warnings included).
    Raises ValueError when a file fails a check (changed since the settings were loaded)."""
    from .tls_files import check_files

    assert values.entry_tls_cert is not None
    result = check_files(
        values.entry_tls_cert,
        values.entry_tls_key,
        values.entry_tls_issuer_ca,
        values.entry_tls_client_ca,
        values.entry_tls_server_names,
        now=now,
    )
    if result.problems:
        raise ValueError("; ".join(str(p) for p in result.problems))
    directory = certs_dir(values.state_dir)
    directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.mkdir(exist_ok=True, mode=0o700)
    wanted = set()
    for item in result.loaded:
        path = directory / f"{item.source.name}.pem"
        write_atomic(path, item.pem().decode())  # mkstemp: mode 600
        wanted.add(path.name)
    for stale in os.listdir(directory):
        if stale not in wanted:
            (directory / stale).unlink()
    moment = now or dt.datetime.now(dt.UTC)
    lines = [
        f"TLS certificate {item.source.name}: {item.leaf.subject.rfc4514_string()} from "
        f"{item.source.cert_path}, valid until {item.leaf.not_valid_after_utc:%Y-%m-%d}"
        for item in result.loaded
    ]
    lines += [
        f"WARNING {line}" for line in result.soon_expiring(values.entry_tls_warn_days, moment)
    ]
    return lines
