"""A local CA and certificates for a local cluster with TLS (scripts/cluster-up.sh --tls) and
for tests: `python -m ray_serve_haproxy.tls_local_ca DIR [NAME ...]`.

Writes into DIR (created private): ca.crt (what `curl --cacert` and grpcio trust), server.pem
(the entry's chain and key, for RSH_ENTRY_TLS_CERT), client.pem (a client certificate and key
from the same CA, for trying mutual TLS). The CA is made once and kept; the server certificate is
made again when missing or within 30 days of expiry. Keys are ECDSA P-256. Names default to
localhost, 127.0.0.1 and ::1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
RENEW_WITHIN = dt.timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ray-serve-haproxy local"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_ca(
    common_name: str = "ray-serve-haproxy local CA",
    not_before: dt.datetime | None = None,
    days: int = 3650,
    issuer: Issued | None = None,
) -> Issued:
    """A CA: a root (self-signed) or, with `issuer`, an intermediate."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def issue(
    ca: Issued,
    names: Sequence[str] = DEFAULT_NAMES,
    *,
    client: bool = False,
    not_before: dt.datetime | None = None,
    days: int = 825,
    common_name: str | None = None,
) -> Issued:
    """A leaf certificate from `ca`: a server's for `names` (subjectAltName; none if empty),
    or a client's."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name or (names[0] if names else "client")))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def ensure_local_ca(directory: Path, names: Sequence[str] = DEFAULT_NAMES) -> list[str]:
    """Makes what is missing in `directory`; returns what it did, for the log."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    done: list[str] = []
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    if ca_crt.exists() and ca_key.exists():
        cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        ca = Issued(cert, key)
    else:
        ca = make_ca()
        _write(ca_key, ca.key_pem())
        _write(ca_crt, ca.cert_pem())
        done.append(f"made a local CA: {ca_crt}")
    server = directory / "server.pem"
    now = dt.datetime.now(dt.UTC)
    stale = True
    if server.exists():
        current = x509.load_pem_x509_certificates(server.read_bytes())[0]
        stale = current.not_valid_after_utc - now < RENEW_WITHIN
    if stale:
        leaf = issue(ca, names)
        _write(server, leaf.cert_pem() + leaf.key_pem())
        done.append(f"made a server certificate for {', '.join(names)}: {server}")
    client = directory / "client.pem"
    if not client.exists():
        person = issue(ca, (), client=True, common_name="local client")
        _write(client, person.cert_pem() + person.key_pem())
        done.append(f"made a client certificate (mutual TLS): {client}")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    for line in ensure_local_ca(Path(args[0]), args[1:] or DEFAULT_NAMES):
        print(f"tls-local-ca: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
