"""The entry refuses, with 400, the requests that the HAProxy fixes a below-floor build lacks
would refuse (comma in Host or :authority, conflicting or repeated Content-Length, Transfer-Encoding
beside Content-Length...), whatever the image's HAProxy patch level; normal requests pass.

Real parts: the image's `entry` command (its rendered config, its HAProxy) on a network of its
own, in front of one stand-in node (the image's Python answering the entry's checks), and
requests written byte by byte from the host to the entry's address.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from .conftest import ImageRunner
from .raw_requests import h2_status, http1_exchange, http1_status

pytestmark = pytest.mark.image

NODE_PORT = 8000
BACKEND = (Path(__file__).resolve().parent / "hygiene_backend.py").read_text()

GET = b"GET /a HTTP/1.1\r\nHost: entry\r\n\r\n"
POST = b"POST /a HTTP/1.1\r\nHost: e\r\n"
CHUNKED_EMPTY = b"0\r\n\r\n"
# (name, request bytes, accepted statuses): HTTP/1.1 on the entry's HTTP port. Where HAProxy
# answers by itself before any rule runs, its own status is accepted too (422: a coding that
# is not `chunked`); 200 where it turns a request into a harmless one (identical repeats).
HTTP1_CASES: list[tuple[str, bytes, tuple[int, ...]]] = [
    ("normal GET", GET, (200,)),
    ("normal POST, Content-Length", POST + b"Content-Length: 3\r\n\r\nabc", (200,)),
    (
        "normal POST, chunked",
        POST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n" + CHUNKED_EMPTY,
        (200,),
    ),
    ("Host: a,b", b"GET /a HTTP/1.1\r\nHost: a,b\r\n\r\n", (400,)),
    ("Host: a, b", b"GET /a HTTP/1.1\r\nHost: a, b\r\n\r\n", (400,)),
    ("Host: a b", b"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", (400,)),
    ("two Host headers", b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", (400,)),
    ("absolute URI a,b, no Host", b"GET http://a,b/x HTTP/1.1\r\n\r\n", (400,)),
    ("absolute URI a,b, Host a", b"GET http://a,b/x HTTP/1.1\r\nHost: a\r\n\r\n", (400,)),
    ("absolute URI, other Host", b"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n", (400,)),
    ("HTTP/1.1 without Host", b"GET /a HTTP/1.1\r\n\r\n", (400,)),
    (
        "two different Content-Length",
        POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        (400,),
    ),
    ("Content-Length: +3", POST + b"Content-Length: +3\r\n\r\nabc", (400,)),
    ("Content-Length: 3, 4", POST + b"Content-Length: 3, 4\r\n\r\nabcd", (400,)),
    (
        "Transfer-Encoding: gzip, chunked",
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + CHUNKED_EMPTY,
        (400, 422),
    ),
    (
        "two Transfer-Encoding headers",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_EMPTY,
        (400,),
    ),
    (
        "Transfer-Encoding: xchunked",
        POST + b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED_EMPTY,
        (400, 422),
    ),
    (
        "Transfer-Encoding in HTTP/1.0",
        b"POST /a HTTP/1.0\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_EMPTY,
        (400,),
    ),
    (
        "space before the colon of Transfer-Encoding",
        POST + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED_EMPTY,
        (400,),
    ),
    (
        "two identical Host headers (merged)",
        GET.replace(b"\r\n\r\n", b"\r\nHost: entry\r\n\r\n"),
        (200,),
    ),
    (
        "two identical Content-Length (merged)",
        POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        (200,),
    ),
]
# (name, port key, header fields, accepted statuses): HTTP/2 with prior knowledge, on the HTTP
# port and on the gRPC port (no gRPC server behind it here: a good call gets 503).
H2_BASE = [(":method", "GET"), (":scheme", "http"), (":path", "/a")]
GRPC_BASE = [(":method", "POST"), (":scheme", "http"), (":path", "/demo.Demo/Echo")]
GRPC_HEADERS = [("content-type", "application/grpc"), ("te", "trailers")]
H2_CASES: list[tuple[str, str, list[tuple[str, str]], tuple[int, ...]]] = [
    ("h2 normal", "http", [*H2_BASE, (":authority", "entry")], (200,)),
    ("h2 :authority a,b", "http", [*H2_BASE, (":authority", "a,b")], (400,)),
    ("h2 host a,b", "http", [*H2_BASE, ("host", "a,b")], (400,)),
    ("h2 :authority a,b, host a", "http", [*H2_BASE, (":authority", "a,b"), ("host", "a")], (400,)),
    ("gRPC port, good call", "grpc", [*GRPC_BASE, (":authority", "e"), *GRPC_HEADERS], (503,)),
    (
        "gRPC port, :authority a,b",
        "grpc",
        [*GRPC_BASE, (":authority", "a,b"), *GRPC_HEADERS],
        (400,),
    ),
]


@dataclass
class Entry:
    address: str
    ports: dict[str, int]
    container: Container


@pytest.fixture(scope="module")
def entry(docker_client: docker.DockerClient, image_runner: ImageRunner) -> Iterator[Entry]:
    name = f"rsh-hygiene-{uuid.uuid4().hex[:8]}"
    network = docker_client.networks.create(name, driver="bridge")
    containers: list[Container] = []
    try:
        node = docker_client.containers.run(
            image_runner.image.id,
            entrypoint=["python3", "-c", BACKEND, str(NODE_PORT)],
            name=f"{name}-node",
            network=name,
            detach=True,
        )
        containers.append(node)
        node.reload()
        node_ip = node.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
        front = docker_client.containers.run(
            image_runner.image.id,
            command=["entry"],
            environment={
                "RSH_ENTRY_NODES": f"{node_ip}:{NODE_PORT}",
                "RSH_ENTRY_CHECK_INTER": "500ms",
                "RSH_ENTRY_CHECK_RISE": "1",
            },
            name=f"{name}-entry",
            network=name,
            detach=True,
        )
        containers.append(front)
        front.reload()
        address = front.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
        deadline = time.monotonic() + 40
        status = None
        while time.monotonic() < deadline:
            try:
                status = http1_status(address, 8000, HTTP1_CASES[0][1], timeout_s=2)
            except OSError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        logs = front.logs().decode(errors="replace")[-3000:]
        assert status == 200, f"the entry never served (last status {status}):\n{logs}"
        yield Entry(address, {"http": 8000, "grpc": 9000}, front)
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()


def test_bad_requests_get_400_and_normal_ones_200(entry: Entry) -> None:
    results = []
    for name, request, accepted in HTTP1_CASES:
        got = http1_status(entry.address, entry.ports["http"], request)
        results.append((name, got, accepted))
    for name, port, fields, accepted in H2_CASES:
        results.append((name, h2_status(entry.address, entry.ports[port], fields), accepted))
    table = "\n".join(
        f"  {got!s:>4} (want {'/'.join(map(str, ok))})  {name}" for name, got, ok in results
    )
    print(f"entry at {entry.address}:\n{table}")
    wrong = [name for name, got, accepted in results if got not in accepted]
    assert not wrong, f"{len(wrong)} of {len(results)} requests got another answer:\n{table}"


def test_transfer_encoding_beside_content_length_is_neutralised(entry: Entry) -> None:
    """CL.TE: HAProxy drops the Content-Length, reads the chunked body, answers and closes, so
    the bytes after the chunked body (a smuggled second request) never become a request."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: e\r\n\r\n"
    request = POST + b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    answer = http1_exchange(entry.address, entry.ports["http"], request + smuggled)
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:2000]
    assert b"/smuggled" not in answer, answer[:2000]
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"body": 0' in answer, answer[:2000]
    assert b"connection: close" in answer.lower(), answer[:2000]


def test_check_status_and_sbom_report_the_patch_level(
    entry: Entry, image_runner: ImageRunner
) -> None:
    """What the running entry's `check`, `status` and `sbom` say agrees with the image's label."""
    label = image_runner.labels["io.ray-serve-haproxy.haproxy.below-security-floor"]
    version = image_runner.labels["io.ray-serve-haproxy.haproxy.version"]
    code, out = entry.container.exec_run(["ray-serve-haproxy", "check", "--no-ports"])
    check = out.decode(errors="replace")
    line = next(x for x in check.splitlines() if "haproxy security floor" in x)
    code, out = entry.container.exec_run(["ray-serve-haproxy", "status"])
    status = out.decode(errors="replace")
    print(f"label: {label}\n{line}\nstatus: {status.splitlines()[0]}")
    assert code == 0, status
    _, out = entry.container.exec_run(["ray-serve-haproxy", "sbom"])
    haproxy = json.loads(out)["components"][0]
    props = {p["name"]: p["value"] for p in haproxy["properties"]}
    below = props["ray-serve-haproxy:below-security-floor"]
    assert below == ("false" if label == "no" else "true"), props
    assert props.get("ray-serve-haproxy:below-security-floor-missing", "no") == label, props
    if label == "no":
        assert line.startswith("OK    haproxy security floor: HAProxy " + version), check
        assert status.startswith(f"HAProxy {version} is at or above the security floor"), status
    else:
        assert line.startswith("WARN  haproxy security floor: WARNING: HAProxy " + version), check
        assert status.startswith(f"WARNING: HAProxy {version} is BELOW the security floor"), status
        for missing in label.split(","):
            assert missing in line and missing in status.splitlines()[0], (missing, line)
