"""TLS at the entry with real clients, against the session's cluster: no second Ray cluster.

The session's cluster itself runs with compose.tls.yaml, as `scripts/cluster-up.sh --tls` starts
it (the first test). Two extra entry containers (the image's `entry` command) join the cluster's
compose network with RSH_ENTRY_NODES=head,worker and publish on free 127.0.0.1 ports:
- `web`: HTTPS and gRPC over TLS, plain HTTP `redirect`, HSTS; its certificate sits in a
  directory laid out like a mounted Kubernetes Secret (server.pem -> ..data/server.pem,
  ..data -> a timestamped directory), so renewal is the same symlink swap the kubelet does;
- `mtls`: plain HTTP `off`, mutual TLS against the local CA.
Certificates come from the runtime's local-CA module (what scripts/cluster-up.sh --tls uses).
Clients: curl and requests verifying against the CA, grpcio's secure channel, Python's ssl.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import grpc
import pytest
import requests
from cryptography import x509
from ray_serve_haproxy.tls_local_ca import Issued, ensure_local_ca, issue, make_ca

from .cluster import GRPC_APP, Cluster

pytestmark = pytest.mark.integration

METADATA = (("application", GRPC_APP),)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TlsEntry:
    container: Any
    https: int
    grpcs: int
    http: int
    mount: Path

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.https}{path}"

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))


@dataclass
class Pki:
    directory: Path
    ca: Issued
    names: tuple[str, ...] = ("localhost", "127.0.0.1")
    serials: list[int] = field(default_factory=list)

    @property
    def ca_file(self) -> str:
        return str(self.directory / "ca.crt")

    @property
    def client_pem(self) -> str:
        return str(self.directory / "client.pem")


def secret_dir(mount: Path, pem: bytes, version: int) -> None:
    """Writes `pem` the way the kubelet updates a Secret volume: a new timestamped directory,
    then `..data` swapped to it by one rename (atomic); server.pem -> ..data/server.pem."""
    target = mount / f"..v{version}"
    target.mkdir(mode=0o755)
    (target / "server.pem").write_bytes(pem)
    (target / "server.pem").chmod(0o644)
    tmp = mount / "..data_tmp"
    tmp.symlink_to(target.name)
    os.replace(tmp, mount / "..data")
    if not (mount / "server.pem").is_symlink():
        (mount / "server.pem").symlink_to("..data/server.pem")


def start_entry(
    client: docker.DockerClient,
    image: str,
    cluster: Cluster,
    name: str,
    mount: Path,
    env: dict[str, str],
) -> TlsEntry:
    https, grpcs, http = free_port(), free_port(), free_port()
    container = client.containers.run(
        image,
        command=["entry"],
        name=f"rshtest-tls-{os.getpid()}-{name}",
        detach=True,
        network=cluster.project.network,
        mem_limit="256m",
        environment={
            "RSH_ENTRY_NODES": "head,worker",
            "RAY_SERVE_HAPROXY_MAXCONN": "4096",
            "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": "300",
            "RSH_ENTRY_TLS_CERT": "/tls/server.pem",
            "RSH_ENTRY_TLS_ISSUER_CA": "/tls/ca.crt",
            "RSH_ENTRY_TLS_SERVER_NAMES": "localhost,127.0.0.1",
            "RSH_ENTRY_TLS_REDIRECT_PORT": str(https),
            **env,
        },
        volumes={str(mount): {"bind": "/tls", "mode": "ro"}},
        ports={
            "8443/tcp": ("127.0.0.1", https),
            "9443/tcp": ("127.0.0.1", grpcs),
            "8000/tcp": ("127.0.0.1", http),
        },
    )
    return TlsEntry(container, https, grpcs, http, mount)


def wait_ready(entry: TlsEntry, pki: Pki, cert: Any = None, timeout_s: float = 90) -> float:
    start = time.monotonic()
    last = ""
    while time.monotonic() - start < timeout_s:
        try:
            answer = requests.get(entry.url("/hello"), verify=pki.ca_file, cert=cert, timeout=5)
            if answer.status_code == 200:
                return time.monotonic() - start
            last = f"{answer.status_code}"
        except requests.RequestException as exc:
            last = repr(exc)[:200]
        entry.container.reload()
        if entry.container.status == "exited":
            break
        time.sleep(0.5)
    pytest.fail(f"TLS entry not serving after {timeout_s}s ({last}):\n{entry.logs()[-3000:]}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("tls-pki")
    ensure_local_ca(directory, ("localhost", "127.0.0.1"))
    ca_key = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    return Pki(directory, Issued(ca_key, key))  # type: ignore[arg-type]


def make_mount(pki: Pki, base: Path, name: str) -> Path:
    mount = base / name
    mount.mkdir(mode=0o755)
    mount.chmod(0o755)
    shutil.copy(pki.ca_file, mount / "ca.crt")
    (mount / "ca.crt").chmod(0o644)
    secret_dir(mount, (pki.directory / "server.pem").read_bytes(), 1)
    return mount


@pytest.fixture(scope="module")
def entries(
    cluster: Cluster, image: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, TlsEntry]]:
    client = docker.from_env()
    base = tmp_path_factory.mktemp("tls-mounts")
    base.chmod(0o755)
    started: dict[str, TlsEntry] = {}
    try:
        started["web"] = start_entry(
            client,
            image,
            cluster,
            "web",
            make_mount(pki, base, "web"),
            {"RSH_ENTRY_PLAIN_HTTP": "redirect", "RSH_ENTRY_HSTS_MAX_AGE_S": "600"},
        )
        mtls = make_mount(pki, base, "mtls")
        started["mtls"] = start_entry(
            client,
            image,
            cluster,
            "mtls",
            mtls,
            {"RSH_ENTRY_PLAIN_HTTP": "off", "RSH_ENTRY_TLS_CLIENT_CA": "/tls/ca.crt"},
        )
        took = wait_ready(started["web"], pki)
        wait_ready(started["mtls"], pki, cert=pki.client_pem)
        print(f"\n[tls] two TLS entries serving {took:.1f}s after start")
        yield started
    finally:
        for entry in started.values():
            entry.container.remove(force=True)
        client.close()


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_compose_cluster_serves_https_and_grpc_over_tls_as_cluster_up_tls_sets_it_up(
    cluster: Cluster, pb: tuple[Any, Any]
) -> None:
    """The session's cluster runs compose.tls.yaml over compose.yaml with the certificate
    scripts/tls-local.sh made (what `scripts/cluster-up.sh --tls` does): HTTPS with HTTP/2 by
    ALPN and gRPC over TLS, verified against the printed local CA; plain HTTP still served."""
    assert cluster.https_port and cluster.grpc_tls_port and cluster.tls_ca, "no TLS overlay"
    ca_file = str(cluster.tls_ca)
    # The entry's mount holds the chain and the CA certificate, never the CA's key.
    assert sorted(p.name for p in cluster.tls_ca.parent.joinpath("entry").iterdir()) == [
        "ca.crt",
        "server.pem",
    ]
    url = f"https://localhost:{cluster.https_port}/hello"
    h2 = curl("--cacert", ca_file, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", url)
    assert h2.stdout == "200 2", f"curl (ALPN h2): {h2.stdout!r} {h2.stderr}"
    answer = requests.get(url, verify=ca_file, timeout=10)
    assert answer.status_code == 200 and answer.json().get("app") == "hello", answer.text[:300]
    assert "strict-transport-security" not in answer.headers  # HSTS only when asked
    untrusted = curl(url)  # the system's CAs only
    assert untrusted.returncode == 60, (untrusted.returncode, untrusted.stderr)
    plain = requests.get(f"{cluster.base_url}/hello", timeout=10, allow_redirects=False)
    assert plain.status_code == 200, "plain HTTP is served by default on the local cluster"
    demo_pb2, demo_pb2_grpc = pb
    credentials = grpc.ssl_channel_credentials(root_certificates=cluster.tls_ca.read_bytes())
    with grpc.secure_channel(f"localhost:{cluster.grpc_tls_port}", credentials) as channel:
        reply = demo_pb2_grpc.GreeterStub(channel).SayHello(
            demo_pb2.HelloRequest(name="compose-tls"), metadata=METADATA, timeout=10
        )
    assert reply.replica_id, reply


def test_https_verified_by_curl_and_requests_with_alpn_and_hsts(
    entries: dict[str, TlsEntry], pki: Pki
) -> None:
    web = entries["web"]
    h2 = curl(
        "--cacert",
        pki.ca_file,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        web.url("/hello"),
    )
    assert h2.stdout == "200 2", f"curl (ALPN h2): {h2.stdout!r} {h2.stderr}"
    h1 = curl(
        "--http1.1",
        "--cacert",
        pki.ca_file,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        web.url("/hello", "127.0.0.1"),
    )
    assert h1.stdout == "200 1.1", f"curl --http1.1 by IP: {h1.stdout!r} {h1.stderr}"
    answer = requests.get(web.url("/hello"), verify=pki.ca_file, timeout=10)
    assert answer.status_code == 200 and answer.json().get("app") == "hello", answer.text[:300]
    assert answer.headers.get("strict-transport-security") == "max-age=600", answer.headers
    context = ssl.create_default_context(cafile=pki.ca_file)
    # The client offers what the entry must refuse: TLS 1.1; TLS 1.2 with a CBC (non-AEAD) suite.
    for low, ciphers in (
        (ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0"),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"),
    ):
        old = ssl.create_default_context(cafile=pki.ca_file)
        old.minimum_version = old.maximum_version = low
        old.set_ciphers(ciphers)
        with (
            pytest.raises(ssl.SSLError),
            socket.create_connection(("127.0.0.1", web.https), timeout=5) as raw,
            old.wrap_socket(raw, server_hostname="localhost"),
        ):
            pass
    tls12 = ssl.create_default_context(cafile=pki.ca_file)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", web.https), timeout=5) as raw,
        tls12.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2" and "GCM" in tls.cipher()[0], tls.cipher()
    with (
        socket.create_connection(("127.0.0.1", web.https), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.3", tls.version()


def test_plain_http_redirects_to_the_published_https_port(entries: dict[str, TlsEntry]) -> None:
    web = entries["web"]
    answer = requests.post(
        f"http://127.0.0.1:{web.http}/echo?x=1", data=b"{}", allow_redirects=False, timeout=10
    )
    assert answer.status_code == 308, (answer.status_code, answer.text[:200])
    assert answer.headers["location"] == f"https://127.0.0.1:{web.https}/echo?x=1"
    assert "strict-transport-security" not in answer.headers


def test_wrong_hostname_and_untrusted_certificate_are_refused(
    entries: dict[str, TlsEntry], pki: Pki
) -> None:
    web = entries["web"]
    wrong = curl(
        "--cacert",
        pki.ca_file,
        "--resolve",
        f"other.example:{web.https}:127.0.0.1",
        f"https://other.example:{web.https}/hello",
    )
    assert wrong.returncode == 60 and "subject" in wrong.stderr.lower(), wrong.stderr
    untrusted = curl(web.url("/hello"))  # the system's CAs only
    assert untrusted.returncode == 60, (untrusted.returncode, untrusted.stderr)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(web.url("/hello"), timeout=10)  # certifi's CAs
    other_ca = web.mount.parent / "other-ca.crt"
    other_ca.write_bytes(make_ca("someone else's CA").cert_pem())
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(web.url("/hello"), verify=str(other_ca), timeout=10)


def test_grpc_over_tls_with_a_secure_channel(
    entries: dict[str, TlsEntry], pki: Pki, pb: tuple[Any, Any]
) -> None:
    demo_pb2, demo_pb2_grpc = pb
    web = entries["web"]
    ca = Path(pki.ca_file).read_bytes()
    with grpc.secure_channel(
        f"127.0.0.1:{web.grpcs}", grpc.ssl_channel_credentials(root_certificates=ca)
    ) as channel:
        stub = demo_pb2_grpc.GreeterStub(channel)
        reply = stub.SayHello(demo_pb2.HelloRequest(name="tls"), metadata=METADATA, timeout=10)
        assert reply.replica_id, reply
        replies = list(
            stub.SayHelloStream(
                demo_pb2.HelloStreamRequest(name="tls", count=3), metadata=METADATA, timeout=10
            )
        )
        assert len(replies) == 3
    other = make_ca("someone else's CA").cert_pem()
    with grpc.secure_channel(
        f"127.0.0.1:{web.grpcs}", grpc.ssl_channel_credentials(root_certificates=other)
    ) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            demo_pb2_grpc.GreeterStub(channel).SayHello(
                demo_pb2.HelloRequest(name="x"), metadata=METADATA, timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_with_and_without_a_client_certificate(
    entries: dict[str, TlsEntry], pki: Pki, pb: tuple[Any, Any]
) -> None:
    mtls = entries["mtls"]
    answer = requests.get(mtls.url("/hello"), verify=pki.ca_file, cert=pki.client_pem, timeout=10)
    assert answer.status_code == 200, answer.text[:200]
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(mtls.url("/hello"), verify=pki.ca_file, timeout=10)
    stranger = issue(make_ca("a stranger's CA"), (), client=True)
    stranger_pem = mtls.mount.parent / "stranger.pem"
    stranger_pem.write_bytes(stranger.cert_pem() + stranger.key_pem())
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(mtls.url("/hello"), verify=pki.ca_file, cert=str(stranger_pem), timeout=10)
    no_cert = curl("--cacert", pki.ca_file, mtls.url("/hello"))
    assert no_cert.returncode != 0, no_cert.stdout[:200]
    # Plain HTTP is off: nothing answers on the published cleartext port.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{mtls.http}/hello", timeout=5)
    demo_pb2, demo_pb2_grpc = pb
    client_pem = Path(pki.client_pem).read_bytes()
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(pki.ca_file).read_bytes(),
        private_key=client_pem[client_pem.index(b"-----BEGIN PRIVATE KEY") :],
        certificate_chain=client_pem[: client_pem.index(b"-----BEGIN PRIVATE KEY")],
    )
    with grpc.secure_channel(f"127.0.0.1:{mtls.grpcs}", creds) as channel:
        reply = demo_pb2_grpc.GreeterStub(channel).SayHello(
            demo_pb2.HelloRequest(name="mtls"), metadata=METADATA, timeout=10
        )
        assert reply.replica_id


def served_serial(entry: TlsEntry, pki: Pki) -> int:
    context = ssl.create_default_context(cafile=pki.ca_file)
    with (
        socket.create_connection(("127.0.0.1", entry.https), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


class TlsLoad:
    """Threads of GETs over HTTPS verified against the CA: half keep one connection, half open
    a new TLS connection per request (every request a handshake)."""

    def __init__(self, entry: TlsEntry, pki: Pki, threads: int = 6) -> None:
        self.entry, self.pki = entry, pki
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self.run, args=(i % 2 == 0,), daemon=True)
            for i in range(threads)
        ]

    def run(self, keep_alive: bool) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            if not keep_alive:
                session.close()
                session = requests.Session()
            start = time.monotonic()
            try:
                answer = session.get(self.entry.url("/hello"), verify=self.pki.ca_file, timeout=10)
                problem = None if answer.status_code == 200 else f"HTTP {answer.status_code}"
            except requests.RequestException as exc:
                problem = repr(exc)[:200]
            with self.lock:
                self.latencies.append(time.monotonic() - start)
                if problem:
                    self.failures.append(problem)

    def __enter__(self) -> TlsLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def summary(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
        return (
            f"{len(self.latencies)} requests, {len(self.failures)} failed, p50 "
            f"{pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms"
        )


def wait_log(entry: TlsEntry, text: str, count: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if entry.logs().count(text) >= count:
            return
        time.sleep(0.3)
    pytest.fail(f"no {count}x {text!r} in the entry's log:\n{entry.logs()[-2000:]}")


def test_renewal_by_secret_swap_under_load_fails_no_request(
    entries: dict[str, TlsEntry], pki: Pki
) -> None:
    web = entries["web"]
    before = served_serial(web, pki)
    renewed = issue(pki.ca, pki.names)
    with TlsLoad(web, pki) as load:
        time.sleep(3)
        secret_dir(web.mount, renewed.cert_pem() + renewed.key_pem(), 2)
        wait_log(web, "certificate server renewed", 1)
        time.sleep(3)
    after = served_serial(web, pki)
    print(f"\n[tls] renewal under load: {load.summary()}")
    assert after == renewed.cert.serial_number and after != before, (before, after)
    assert len(load.latencies) > 50, load.summary()
    assert not load.failures, f"{load.summary()}: {load.failures[:5]}"
    ordered = sorted(load.latencies)
    assert ordered[int(0.99 * len(ordered))] < 2.0, load.summary()


def test_a_bad_renewal_is_refused_and_the_certificate_kept(
    entries: dict[str, TlsEntry], pki: Pki
) -> None:
    web = entries["web"]
    before = served_serial(web, pki)
    foreign = issue(make_ca("not our CA"), pki.names)
    secret_dir(web.mount, foreign.cert_pem() + foreign.key_pem(), 3)
    wait_log(web, "new TLS files refused", 1)
    assert "chain incomplete" in web.logs()
    assert served_serial(web, pki) == before
    answer = requests.get(web.url("/hello"), verify=pki.ca_file, timeout=10)
    assert answer.status_code == 200
