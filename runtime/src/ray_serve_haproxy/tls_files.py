"""The entry's TLS files: find them, check them, and compose what HAProxy loads.

A certificate source is a chain file and its key (in the same file or beside it). Every check
names the setting and the file: unreadable, no certificate, no key or an encrypted one, a key
that does not match, a certificate not valid now, a chain that does not verify up to a CA (the
chain's own root, RSH_ENTRY_TLS_ISSUER_CA or the system bundle), no subjectAltName, a configured
server name no certificate covers. HAProxy gets one composed PEM per source (chain then key),
written by entry_tls.py; the renewal watcher (tls_watch.py) runs the same checks on new files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Files of a certificate directory that are not certificates (HAProxy's extra files, keys).
SIDE_EXTENSIONS = (".key", ".ocsp", ".issuer", ".sctl")
CERT_EXTENSIONS = (".pem", ".crt", ".cer")
_KEY_BLOCK = re.compile(
    rb"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:RSA |EC |ENCRYPTED )?"
    rb"PRIVATE KEY-----",
    re.S,
)
CERT_SETTING = "RSH_ENTRY_TLS_CERT"
KEY_SETTING = "RSH_ENTRY_TLS_KEY"
ISSUER_SETTING = "RSH_ENTRY_TLS_ISSUER_CA"
CLIENT_CA_SETTING = "RSH_ENTRY_TLS_CLIENT_CA"
NAMES_SETTING = "RSH_ENTRY_TLS_SERVER_NAMES"


@dataclass(frozen=True)
class Problem:
    setting: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Source:
    """One certificate: `name` is the composed file's name in HAProxy's directory."""

    name: str
    cert_path: str
    key_path: str | None  # None: the key is in cert_path
    key_setting: str = KEY_SETTING

    def fingerprint(self) -> str:
        """Hash of the files' contents (follows symlinks: a Secret's swap changes it)."""
        digest = hashlib.sha256()
        for path in (self.cert_path, self.key_path):
            if path:
                try:
                    with open(path, "rb") as handle:
                        digest.update(handle.read())
                except OSError as exc:
                    digest.update(repr(exc).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Loaded:
    """A source that passed every check."""

    source: Source
    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    def pem(self) -> bytes:
        """What HAProxy loads: the chain, then the key (unencrypted PKCS#8)."""
        parts = [c.public_bytes(serialization.Encoding.PEM) for c in self.chain]
        parts.append(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return b"".join(parts)

    def days_left(self, now: dt.datetime) -> float:
        return (self.leaf.not_valid_after_utc - now).total_seconds() / 86400


def discover(cert: str, key: str | None) -> tuple[list[Source], list[Problem]]:
    """The sources behind RSH_ENTRY_TLS_CERT (a file, or a directory of files)."""
    if not os.path.isdir(cert):
        if not os.path.exists(cert):
            return [], [Problem(CERT_SETTING, cert, "no such file or directory")]
        return [Source(_stem(cert), cert, key)], []
    if key:
        return [], [
            Problem(KEY_SETTING, key, f"only with a certificate file, not a directory ({cert})")
        ]
    try:
        names = sorted(os.listdir(cert))
    except OSError as exc:
        return [], [Problem(CERT_SETTING, cert, f"cannot list the directory: {exc.strerror}")]
    sources: list[Source] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for name in names:
        path = os.path.join(cert, name)
        # Hidden entries are a mounted Secret's own bookkeeping (..data, ..2026_12_07...).
        if name.startswith(".") or not os.path.isfile(path) or name.endswith(SIDE_EXTENSIONS):
            continue
        stem = _stem(name)
        if stem in seen:
            problems.append(Problem(CERT_SETTING, path, f"same name as {seen[stem]}: rename one"))
            continue
        seen[stem] = path
        key_path = os.path.join(cert, stem + ".key")
        sources.append(
            Source(stem, path, key_path if os.path.exists(key_path) else None, CERT_SETTING)
        )
    if not sources and not problems:
        problems.append(Problem(CERT_SETTING, cert, "the directory holds no certificate file"))
    return sources, problems


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in CERT_EXTENSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "cert"


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def load_bundle(path: str) -> list[x509.Certificate]:
    return list(x509.load_pem_x509_certificates(_read(path)))


def load_source(
    source: Source, trust: list[x509.Certificate], trust_label: str, now: dt.datetime
) -> tuple[Loaded | None, list[Problem]]:
    """Every check of one certificate source; Loaded only when there is no problem."""
    cert_path = source.cert_path
    try:
        data = _read(cert_path)
    except OSError as exc:
        return None, [Problem(CERT_SETTING, cert_path, f"cannot read it: {exc.strerror}")]
    try:
        chain = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        return None, [Problem(CERT_SETTING, cert_path, "no PEM certificate in it")]
    key_path = source.key_path or cert_path
    key_setting = source.key_setting if source.key_path else CERT_SETTING
    if source.key_path:
        try:
            key_data = _read(source.key_path)
        except OSError as exc:
            return None, [Problem(key_setting, key_path, f"cannot read it: {exc.strerror}")]
    else:
        key_data = data
    block = _KEY_BLOCK.search(key_data)
    if block is None:
        where = "in it" if not source.key_path else "in it (the key file)"
        hint = "" if source.key_path else f"; put it there or set {KEY_SETTING}"
        return None, [Problem(key_setting, key_path, f"no PEM private key {where}{hint}")]
    try:
        key = serialization.load_pem_private_key(block.group(0), password=None)
    except TypeError:
        return None, [
            Problem(
                key_setting,
                key_path,
                "the private key is encrypted; HAProxy needs it "
                "unencrypted (openssl pkey -in KEY -out KEY.plain)",
            )
        ]
    except (ValueError, x509.UnsupportedGeneralNameType) as exc:
        return None, [Problem(key_setting, key_path, f"not a usable private key ({exc})")]
    problems: list[Problem] = []
    leaf = chain[0]
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        problems.append(
            Problem(
                key_setting,
                key_path,
                f"the private key does not match the certificate {_subject(leaf)} in {cert_path}",
            )
        )
    for index, cert in enumerate(chain):
        which = "the certificate" if index == 0 else f"chain certificate #{index + 1}"
        if now < cert.not_valid_before_utc:
            problems.append(
                Problem(
                    CERT_SETTING,
                    cert_path,
                    f"{which} {_subject(cert)} is not "
                    f"valid before {_when(cert.not_valid_before_utc)}",
                )
            )
        if now > cert.not_valid_after_utc:
            problems.append(
                Problem(
                    CERT_SETTING,
                    cert_path,
                    f"{which} {_subject(cert)} expired on {_when(cert.not_valid_after_utc)}",
                )
            )
    chain_problem = _chain_problem(chain, trust, trust_label)
    if chain_problem:
        problems.append(Problem(CERT_SETTING, cert_path, chain_problem))
    if not _sans(leaf):
        problems.append(
            Problem(
                CERT_SETTING,
                cert_path,
                f"the certificate {_subject(leaf)} has "
                "no subjectAltName (DNS or IP): clients ignore the CN",
            )
        )
    if problems:
        return None, problems
    return Loaded(source, chain, key), []


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chain_problem(
    chain: tuple[x509.Certificate, ...], trust: list[x509.Certificate], trust_label: str
) -> str | None:
    """Chain complete: each certificate is issued by the next one in the file, and the last is
    a root (self-signed) or issued by a CA of the trust bundle."""
    for index in range(len(chain) - 1):
        if not _issued_by(chain[index], chain[index + 1]):
            return (
                f"chain broken: certificate #{index + 1} {_subject(chain[index])} is not "
                f"issued by the next one in the file, #{index + 2} "
                f"{_subject(chain[index + 1])} (order: the server's certificate first, "
                "then each issuer)"
            )
    last = chain[-1]
    if last.issuer == last.subject and _issued_by(last, last):
        return None
    if any(ca.subject == last.issuer and _issued_by(last, ca) for ca in trust):
        return None
    return (
        f"chain incomplete: {_subject(last)} is issued by {last.issuer.rfc4514_string()!r}, "
        f"which is neither in the file nor in {trust_label}: append the intermediate(s) "
        f"to the file, or set {ISSUER_SETTING} to the issuing CA"
    )


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [n.lower() for n in ext.get_values_for_type(x509.DNSName)]
    return names + [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def covers(sans: Iterable[str], name: str) -> bool:
    """RFC 6125 matching: exact, or a `*.` wildcard for exactly one leftmost label."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for san in sans:
        if address is not None:
            try:
                if ipaddress.ip_address(san) == address:
                    return True
            except ValueError:
                continue
        elif san == name or _wildcard_covers(san, name):
            return True
    return False


def _wildcard_covers(san: str, name: str) -> bool:
    return san.startswith("*.") and "." in name and name.split(".", 1)[1] == san[2:]


def _subject(cert: x509.Certificate) -> str:
    return repr(cert.subject.rfc4514_string() or "(empty subject)")


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class TlsFiles:
    loaded: tuple[Loaded, ...]
    problems: tuple[Problem, ...]

    def soon_expiring(self, days: int, now: dt.datetime) -> list[str]:
        return [
            f"{item.source.cert_path}: the certificate {_subject(item.leaf)} expires on "
            f"{_when(item.leaf.not_valid_after_utc)}, in {item.days_left(now):.1f} days"
            for item in self.loaded
            if item.days_left(now) < days
        ]


def check_files(
    cert: str,
    key: str | None,
    issuer_ca: str | None,
    client_ca: str | None,
    server_names: Iterable[str] = (),
    now: dt.datetime | None = None,
    system_bundle: str = SYSTEM_BUNDLE,
) -> TlsFiles:
    """Every check of the entry's TLS settings' files."""
    now = now or dt.datetime.now(dt.UTC)
    problems: list[Problem] = []
    trust: list[x509.Certificate] = []
    trust_label = issuer_ca or system_bundle
    bundle_setting = ISSUER_SETTING if issuer_ca else "(system bundle)"
    try:
        trust = load_bundle(trust_label)
    except OSError as exc:
        if issuer_ca:
            problems.append(Problem(bundle_setting, trust_label, f"cannot read it: {exc.strerror}"))
    except ValueError:
        problems.append(Problem(bundle_setting, trust_label, "no PEM certificate in it"))
    if client_ca:
        try:
            if not load_bundle(client_ca):
                raise ValueError
        except OSError as exc:
            problems.append(
                Problem(CLIENT_CA_SETTING, client_ca, f"cannot read it: {exc.strerror}")
            )
        except ValueError:
            problems.append(Problem(CLIENT_CA_SETTING, client_ca, "no PEM certificate in it"))
    sources, found = discover(cert, key)
    problems += found
    loaded: list[Loaded] = []
    for source in sources:
        item, source_problems = load_source(source, trust, trust_label, now)
        problems += source_problems
        if item:
            loaded.append(item)
    if not problems:
        all_sans = [_sans(item.leaf) for item in loaded]
        for name in server_names:
            if not any(covers(sans, name) for sans in all_sans):
                listed = "; ".join(",".join(s) for s in all_sans)
                problems.append(
                    Problem(
                        NAMES_SETTING,
                        cert,
                        f"no certificate has {name!r} in its subjectAltName (they have: {listed})",
                    )
                )
    return TlsFiles(tuple(loaded), tuple(problems))
