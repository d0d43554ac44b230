"""Bad certificate inputs for the entry, made in the test with `cryptography` (through the
runtime's own local-CA module): each case writes its files into a directory and says which
settings point at them and what the refusal must name. Used by the unit tests (tls_files.py
directly) and by the image tests (the real `entry` command refuses to start, exit 2)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from ray_serve_haproxy.tls_local_ca import Issued, issue, make_ca

# Where the image tests mount a case's directory inside the container.
MOUNT = "/tls"


@dataclass(frozen=True)
class Case:
    name: str
    # Settings, with paths relative to the case directory (made absolute by `env`).
    settings: dict[str, str]
    # The refusal must name this setting, this file (relative) and say this.
    setting: str
    file: str
    says: str

    def env(self, root: str | Path) -> dict[str, str]:
        out = {}
        for key, value in self.settings.items():
            is_path = key.endswith(("_CERT", "_KEY", "_CA"))
            out[key] = f"{root}/{value}" if is_path else value
        return out


def _pem(*parts: Issued, key: Issued | None = None) -> bytes:
    data = b"".join(p.cert_pem() for p in parts)
    return data + (key.key_pem() if key else b"")


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o644)


def build(directory: Path) -> list[Case]:
    """Writes every case's files into `directory` (one root CA for all) and returns the cases.
    The root is at `ca.crt`; every case trusts it through RSH_ENTRY_TLS_ISSUER_CA."""
    now = dt.datetime.now(dt.UTC)
    root = make_ca("test root CA")
    intermediate = make_ca("test intermediate CA", issuer=root)
    _write(directory / "ca.crt", root.cert_pem())
    good = issue(root, ("localhost", "127.0.0.1"))
    other = issue(root, ("localhost",))
    cases: list[Case] = []
    base = {"RSH_ENTRY_TLS_ISSUER_CA": "ca.crt", "RSH_ENTRY_PLAIN_HTTP": "serve"}

    def add(
        name: str, files: dict[str, bytes], setting: str, file: str, says: str, **settings: str
    ) -> None:
        (directory / name).mkdir()
        for fname, data in files.items():
            _write(directory / name / fname, data)
        env = {
            **base,
            **{
                k: f"{name}/{v}" if k.endswith(("_CERT", "_KEY")) else v
                for k, v in settings.items()
            },
        }
        cases.append(Case(name, env, setting, f"{name}/{file}", says))

    add(
        "key_mismatch",
        {"server.pem": _pem(good, key=other)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "the private key does not match the certificate",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    add(
        "key_mismatch_separate",
        {"tls.crt": _pem(good), "tls.key": other.key_pem()},
        "RSH_ENTRY_TLS_KEY",
        "tls.key",
        "the private key does not match the certificate",
        RSH_ENTRY_TLS_CERT="tls.crt",
        RSH_ENTRY_TLS_KEY="tls.key",
    )
    expired = issue(root, ("localhost",), not_before=now - dt.timedelta(days=400), days=30)
    add(
        "expired",
        {"server.pem": _pem(expired, key=expired)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "expired on",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    future = issue(root, ("localhost",), not_before=now + dt.timedelta(days=10))
    add(
        "not_yet_valid",
        {"server.pem": _pem(future, key=future)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "is not valid before",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    leaf = issue(intermediate, ("localhost",))
    add(
        "chain_incomplete",
        {"server.pem": _pem(leaf, key=leaf)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "chain incomplete",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    add(
        "chain_out_of_order",
        {"server.pem": _pem(leaf, root, intermediate, key=leaf)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "chain broken",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    bare = issue(root, ())
    add(
        "no_san",
        {"server.pem": _pem(bare, key=bare)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "no subjectAltName",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    add(
        "name_not_covered",
        {"server.pem": _pem(good, key=good)},
        "RSH_ENTRY_TLS_SERVER_NAMES",
        "server.pem",
        "no certificate has 'api.example.com'",
        RSH_ENTRY_TLS_CERT="server.pem",
        RSH_ENTRY_TLS_SERVER_NAMES="localhost,api.example.com",
    )
    add(
        "no_key",
        {"server.pem": _pem(good)},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "no PEM private key",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    encrypted = good.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    add(
        "encrypted_key",
        {"tls.crt": _pem(good), "tls.key": encrypted},
        "RSH_ENTRY_TLS_KEY",
        "tls.key",
        "encrypted",
        RSH_ENTRY_TLS_CERT="tls.crt",
        RSH_ENTRY_TLS_KEY="tls.key",
    )
    add(
        "not_pem",
        {"server.pem": b"hello\n"},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "no PEM certificate",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    # A mounted Secret whose target vanished: the symlink dangles.
    add(
        "missing",
        {},
        "RSH_ENTRY_TLS_CERT",
        "server.pem",
        "no such file",
        RSH_ENTRY_TLS_CERT="server.pem",
    )
    os.symlink("..data/server.pem", directory / "missing" / "server.pem")
    # Unreadable for the image's user (uid 1000); as root only the image test sees it fail.
    add(
        "unreadable",
        {"tls.crt": _pem(good), "tls.key": good.key_pem()},
        "RSH_ENTRY_TLS_KEY",
        "tls.key",
        "cannot read it",
        RSH_ENTRY_TLS_CERT="tls.crt",
        RSH_ENTRY_TLS_KEY="tls.key",
    )
    (directory / "unreadable" / "tls.key").chmod(0o000)
    return cases


def good_files(directory: Path) -> Callable[[], dict[str, str]]:
    """A root CA and a good server certificate for localhost/127.0.0.1 in `directory`."""
    root = make_ca("test root CA")
    good = issue(root, ("localhost", "127.0.0.1"))
    _write(directory / "ca.crt", root.cert_pem())
    _write(directory / "server.pem", _pem(good, key=good))
    return lambda: {"RSH_ENTRY_TLS_CERT": "server.pem", "RSH_ENTRY_TLS_ISSUER_CA": "ca.crt"}
