"""Certificate renewal at the entry, without a restart: `python -m ray_serve_haproxy.tls_watch`.

Runs beside the entry's HAProxy under supervisord (only with RSH_ENTRY_TLS_CERT). Every
INTERVAL_S it hashes the certificate files (following symlinks, so a Kubernetes Secret's
`..data` swap or cert-manager's renewal counts like an edit in place). When they changed, the
new files get every check of the start (tls_files.py); if they pass, HAProxy gets each changed
certificate over its admin socket (`set ssl cert` then `commit ssl cert`: connections in flight
keep the old one, new handshakes get the new one, nothing restarts) and the composed file on disk
is replaced, so a restart loads the same. A certificate added to or removed from a directory is
added to or removed from HAProxy's list the same way. Files that fail a check are refused with a
log line and HAProxy keeps what it has. Once a day it logs certificates close to expiry.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from .entry import socket_path
from .entry_tls import certs_dir
from .haproxy_stats import query
from .settings import Settings
from .settings_loader import InvalidSettings, load_settings
from .state_dir import write_atomic
from .tls_files import Loaded, check_files, discover

INTERVAL_S = 2.0
EXPIRY_LOG_EVERY_S = 86400.0


def log(message: str) -> None:
    print(f"ray-serve-haproxy tls-watch: {message}", flush=True)


def fingerprints(values: Settings) -> dict[str, str]:
    assert values.entry_tls_cert is not None
    sources, problems = discover(values.entry_tls_cert, values.entry_tls_key)
    found = {source.name: source.fingerprint() for source in sources}
    # A directory that cannot be listed, or a vanished file, is a change too (logged on apply).
    found.update({f"?{p.path}": p.message for p in problems})
    return found


class HAProxyRefused(RuntimeError):
    pass


def _ask(sock: Path, command: str, expect: str) -> str:
    answer = query(str(sock), command, timeout_s=10.0).strip()
    if expect not in answer:
        head = command.split("\n", 1)[0]
        raise HAProxyRefused(f"`{head}` answered {answer[:300]!r}")
    return answer


def push(sock: Path, directory: Path, item: Loaded, new: bool) -> None:
    """One certificate into the running HAProxy: a transaction, committed at once."""
    path = directory / f"{item.source.name}.pem"
    pem = item.pem().decode()
    if new:
        _ask(sock, f"new ssl cert {path}", "New empty certificate store")
    # The payload ends with an empty line (PEM has none inside).
    _ask(sock, f"set ssl cert {path} <<\n{pem}", "Transaction")
    _ask(sock, f"commit ssl cert {path}", "Success")
    if new:
        _ask(sock, f"add ssl crt-list {directory} {path}", "Success")
    write_atomic(path, pem)


def remove(sock: Path, directory: Path, name: str) -> None:
    path = directory / f"{name}.pem"
    _ask(sock, f"del ssl crt-list {directory} {path}", "deleted")
    _ask(sock, f"del ssl cert {path}", "deleted")
    path.unlink(missing_ok=True)


def apply(values: Settings, before: dict[str, str], after: dict[str, str]) -> bool:
    """Hands HAProxy what changed; False (and a log line) when the new files are refused."""
    assert values.entry_tls_cert is not None
    result = check_files(
        values.entry_tls_cert,
        values.entry_tls_key,
        values.entry_tls_issuer_ca,
        values.entry_tls_client_ca,
        values.entry_tls_server_names,
    )
    if result.problems:
        for problem in result.problems:
            log(
                f"WARNING new TLS files refused, HAProxy keeps its certificates: "
                f"{problem.setting}: {problem}"
            )
        return False
    sock = socket_path(values.state_dir)
    directory = certs_dir(values.state_dir)
    try:
        for item in result.loaded:
            name = item.source.name
            if before.get(name) == after.get(name) and (directory / f"{name}.pem").exists():
                continue
            new = not (directory / f"{name}.pem").exists()
            push(sock, directory, item, new)
            log(
                f"certificate {name} {'added' if new else 'renewed'}: "
                f"{item.leaf.subject.rfc4514_string()}, valid until "
                f"{item.leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        current = {item.source.name for item in result.loaded}
        for stale in sorted(p.stem for p in directory.glob("*.pem")):
            if stale not in current:
                remove(sock, directory, stale)
                log(f"certificate {stale} removed")
    except (OSError, HAProxyRefused) as exc:
        log(f"ERROR HAProxy did not take the new certificate: {exc}")
        return False
    return True


def log_expiry(values: Settings) -> None:
    assert values.entry_tls_cert is not None
    now = dt.datetime.now(dt.UTC)
    result = check_files(
        values.entry_tls_cert, values.entry_tls_key, values.entry_tls_issuer_ca, None, (), now=now
    )
    for line in result.soon_expiring(values.entry_tls_warn_days, now):
        log(f"WARNING {line}")


def main(argv: list[str] | None = None) -> int:
    try:
        # No role: the files are checked here on every change, never a reason to stop.
        values = load_settings(check_token=False).values
    except InvalidSettings as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    if values.entry_tls_cert is None:
        log("TLS is off (RSH_ENTRY_TLS_CERT unset): nothing to watch")
        return 0
    seen = fingerprints(values)
    next_expiry_log = time.monotonic() + EXPIRY_LOG_EVERY_S
    log(f"watching {values.entry_tls_cert} every {INTERVAL_S:g} s")
    while True:
        time.sleep(INTERVAL_S)
        current = fingerprints(values)
        if current != seen:
            # Remembered even when refused: a half-copied pair is retried on its next change.
            apply(values, seen, current)
            seen = current
        if time.monotonic() >= next_expiry_log:
            log_expiry(values)
            next_expiry_log = time.monotonic() + EXPIRY_LOG_EVERY_S


if __name__ == "__main__":
    sys.exit(main())
