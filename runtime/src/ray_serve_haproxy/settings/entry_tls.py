"""Group "Entry TLS": HTTPS and gRPC over TLS at the entry (docs/tls.md).

Checked by settings_rules/entry_tls.py (with tls_files.py), applied by entry_tls.py.
Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import Choice, FilePath, IntRange, Port, PortOrOff, ServerNameList
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class EntryTlsSettings:
    entry_tls_cert: str | None = setting(
        Spec(
            "RSH_ENTRY_TLS_CERT",
            Group.ENTRY_TLS,
            FilePath(),
            "Entry: turns TLS on. A PEM file with the certificate chain (the server's "
            "certificate first, then its intermediates) and, unless `RSH_ENTRY_TLS_KEY` is "
            "set, its private key; or a directory of such files for several certificates, "
            "chosen by SNI (`NAME.pem`/`NAME.crt`, the key inside or in `NAME.key` beside it; "
            "the first file in name order answers clients whose SNI matches none). Checked "
            "before start: readable, key matches, valid now, chain complete, a subjectAltName.",
            unset_means="unset (TLS off: plain HTTP only)",
        )
    )
    entry_tls_key: str | None = setting(
        Spec(
            "RSH_ENTRY_TLS_KEY",
            Group.ENTRY_TLS,
            FilePath(),
            "Entry: the private key (unencrypted PEM) of `RSH_ENTRY_TLS_CERT` when it is a "
            "separate file, e.g. a Kubernetes TLS Secret's `tls.key` beside `tls.crt`.",
            unset_means="unset (the key is in the certificate file)",
        )
    )
    entry_tls_issuer_ca: str | None = setting(
        Spec(
            "RSH_ENTRY_TLS_ISSUER_CA",
            Group.ENTRY_TLS,
            FilePath(),
            "Entry: CA bundle the certificate chain must verify up to when its last "
            "certificate is not a root (a private CA, e.g. cert-manager's `ca.crt`). The "
            "chain's own root, if included, also counts.",
            unset_means="unset (the system bundle /etc/ssl/certs/ca-certificates.crt)",
        )
    )
    entry_tls_server_names: tuple[str, ...] = setting(
        Spec(
            "RSH_ENTRY_TLS_SERVER_NAMES",
            Group.ENTRY_TLS,
            ServerNameList(),
            "Entry: names (DNS or IP) clients use to reach it, comma-separated; each must be "
            "in the subjectAltName of one certificate, checked before start.",
            default=(),
            unset_means="unset (no name checked)",
        )
    )
    entry_https_port: int = setting(
        Spec(
            "RSH_ENTRY_HTTPS_PORT",
            Group.ENTRY_TLS,
            Port(),
            "Entry: port of HTTPS (HTTP/1.1 and HTTP/2 by ALPN) when TLS is on.",
            default=8443,
        )
    )
    entry_grpc_tls_port: int | None = setting(
        Spec(
            "RSH_ENTRY_GRPC_TLS_PORT",
            Group.ENTRY_TLS,
            PortOrOff("no gRPC over TLS"),
            "Entry: port of gRPC over TLS (HTTP/2 by ALPN) when TLS is on and "
            "`RSH_GRPC_PORT` is not 0; 0: none.",
            default=9443,
        )
    )
    entry_plain_http: str | None = setting(
        Spec(
            "RSH_ENTRY_PLAIN_HTTP",
            Group.ENTRY_TLS,
            Choice("off", "redirect", "serve"),
            "Entry: what `RSH_HTTP_PORT` and `RSH_GRPC_PORT` do when TLS is on; required then, "
            "so the choice is explicit. `off`: neither listens (except on the container's "
            "loopback, for its own healthcheck); `redirect`: HTTP answers 308 to the same "
            "URL over HTTPS, cleartext gRPC is off; `serve`: both keep serving cleartext.",
            unset_means="unset (required with RSH_ENTRY_TLS_CERT)",
        )
    )
    entry_tls_redirect_port: int | None = setting(
        Spec(
            "RSH_ENTRY_TLS_REDIRECT_PORT",
            Group.ENTRY_TLS,
            Port(),
            "Entry: the HTTPS port clients reach (as published, e.g. 443 behind a load "
            "balancer), written into redirects; 443 is left out of the URL.",
            unset_means="unset (RSH_ENTRY_HTTPS_PORT)",
        )
    )
    entry_hsts_max_age_s: int | None = setting(
        Spec(
            "RSH_ENTRY_HSTS_MAX_AGE_S",
            Group.ENTRY_TLS,
            IntRange(1, 63_072_000, "s"),
            "Entry: sends `Strict-Transport-Security: max-age=N` on HTTPS answers: browsers "
            "then refuse plain HTTP to this host for N seconds (31536000: a year). Only when "
            "every name of the host serves HTTPS for good.",
            unset_means="unset (no HSTS header)",
        )
    )
    entry_tls_client_ca: str | None = setting(
        Spec(
            "RSH_ENTRY_TLS_CLIENT_CA",
            Group.ENTRY_TLS,
            FilePath(),
            "Entry: mutual TLS. A PEM bundle of the CAs whose client certificates are "
            "accepted; a client without a certificate signed by one of them is refused in the "
            "handshake (`verify required`), on HTTPS and gRPC over TLS.",
            unset_means="unset (no client certificate asked)",
        )
    )
    entry_tls_warn_days: int = setting(
        Spec(
            "RSH_ENTRY_TLS_WARN_DAYS",
            Group.ENTRY_TLS,
            IntRange(1, 365, "days"),
            "Entry: a certificate that expires within this many days is a WARN in `check` "
            "and a WARNING line in the entry's log (at start, on renewal and daily).",
            default=14,
        )
    )
