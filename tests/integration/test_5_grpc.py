"""gRPC through HAProxy: the demo's Greeter service (examples/demo/demo.proto, app `greeter`)
called from the host with a real grpcio client on the published gRPC port, where the head's
HAProxy runs its HTTP/2 gRPC frontend and routes by the `application` metadata straight to
the replicas' direct-ingress gRPC ports. Client stubs are generated from the same .proto at
test time.

Last in the session (after the faults of test_4): it first waits until the cluster serves
gRPC again, and its own node-loss test scales the workers back to three so the lost replica
has somewhere to go.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from differential.wire import strings_of_field_1

from .cluster import GRPC_APP, Cluster, note, wait_for
from .grpc_client import METADATA, GrpcLoad
from .grpc_client import channel as open_channel
from .traffic import FaultReport, run_through

pytestmark = pytest.mark.integration

BACKEND = f"grpc-{GRPC_APP}"  # Ray names HAProxy's gRPC backends grpc-<app>
GRPC_DIRECT_INGRESS_PORTS = range(40000, 41001)
# Serve's own gRPC API; HAProxy answers Healthz itself and sends ListApplications to Serve's
# fallback proxy on the head.
HEALTHZ = "/ray.serve.RayServeAPIService/Healthz"
LIST_APPLICATIONS = "/ray.serve.RayServeAPIService/ListApplications"

# Node loss under gRPC load, bounds as in test_4 (HTTP): only calls in flight when the worker
# died may fail, every call sent FULL_SERVICE_AFTER_S after the kill succeeds, and no call that
# succeeded took longer than traffic.SLOWEST_OK_S.
CONCURRENCY = 16
FULL_SERVICE_AFTER_S = 1.0
STEADY_S = 15


def _identity(data: bytes) -> bytes:
    return data


@pytest.fixture(scope="module")
def grpc_cluster(cluster: Cluster, pb: tuple[Any, Any]) -> Iterator[Cluster]:
    """The session's cluster, once its gRPC app answers through HAProxy."""
    if GRPC_APP not in cluster.expected_routes.values():
        pytest.skip(f"the image's demo config has no gRPC app {GRPC_APP!r} (built before it)")
    cluster.wait_serving(timeout_s=300)
    demo_pb2, demo_pb2_grpc = pb
    with open_channel(cluster) as channel:
        stub = demo_pb2_grpc.GreeterStub(channel)

        def answers() -> bool:
            request = demo_pb2.HelloRequest(name="probe")
            return bool(stub.SayHello(request, metadata=METADATA, timeout=5).replica_id)

        wait_for(f"{GRPC_APP} answering on {cluster.grpc_target}", answers, timeout_s=120)
    yield cluster


@pytest.fixture
def stub(grpc_cluster: Cluster, pb: tuple[Any, Any]) -> Iterator[Any]:
    with open_channel(grpc_cluster) as channel:
        yield pb[1].GreeterStub(channel)


def test_unary_and_server_streaming_calls(
    grpc_cluster: Cluster, stub: Any, pb: tuple[Any, Any]
) -> None:
    demo_pb2 = pb[0]
    workers = {w.ip: w for w in grpc_cluster.workers()}
    reply = stub.SayHello(demo_pb2.HelloRequest(name="ray"), metadata=METADATA, timeout=10)
    print(f"\nunary reply: {reply.message!r} from {reply.replica} on {reply.node_ip}")
    assert reply.message == "hello, ray"
    assert reply.app == GRPC_APP and reply.index == 0
    assert reply.node_ip in workers, (reply.node_ip, sorted(workers))
    assert reply.hostname == workers[reply.node_ip].hostname
    assert reply.replica_id and reply.replica.endswith(reply.replica_id)

    stream = stub.SayHelloStream(
        demo_pb2.HelloStreamRequest(name="stream", count=5), metadata=METADATA, timeout=10
    )
    replies = list(stream)
    assert stream.code() == grpc.StatusCode.OK
    print(f"stream: {[(r.index, r.message) for r in replies]}")
    assert [r.index for r in replies] == [1, 2, 3, 4, 5]
    assert [r.message for r in replies] == [f"hello, stream ({i}/5)" for i in range(1, 6)]
    # One call, one replica: every message of a stream comes from the same one.
    assert len({(r.replica_id, r.node_ip) for r in replies}) == 1
    assert replies[0].node_ip in workers


def test_calls_without_application_metadata_are_refused_clearly(
    stub: Any, pb: tuple[Any, Any]
) -> None:
    # Several apps have gRPC backends (Serve gives every app one): no metadata, no route.
    with pytest.raises(grpc.RpcError) as caught:
        stub.SayHello(pb[0].HelloRequest(name="x"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value
    assert "application" in (caught.value.details() or "").lower()


def test_100_calls_answer_from_replicas_on_both_workers(
    grpc_cluster: Cluster, stub: Any, pb: tuple[Any, Any]
) -> None:
    demo_pb2 = pb[0]
    workers = {w.ip: w.name for w in grpc_cluster.workers()}
    by_worker: Counter[str] = Counter()
    replicas: set[str] = set()
    for i in range(100):
        if i % 4 == 3:
            call = stub.SayHelloStream(
                demo_pb2.HelloStreamRequest(name=f"c{i}", count=2), metadata=METADATA, timeout=10
            )
            answers = list(call)
            assert len(answers) == 2
        else:
            answers = [
                stub.SayHello(demo_pb2.HelloRequest(name=f"c{i}"), metadata=METADATA, timeout=10)
            ]
        for answer in answers[:1]:
            assert answer.node_ip in workers, (answer.node_ip, workers)
            by_worker[workers[answer.node_ip]] += 1
            replicas.add(answer.replica_id)
    note(f"\n100 gRPC calls by worker: {dict(by_worker)}; replicas: {sorted(replicas)}")
    assert len(by_worker) >= 2, f"gRPC answers came from one worker only: {dict(by_worker)}"
    assert len(replicas) >= 2


def test_grpc_health_check_and_list_applications(grpc_cluster: Cluster) -> None:
    with open_channel(grpc_cluster) as channel:
        healthz = channel.unary_unary(
            HEALTHZ, request_serializer=_identity, response_deserializer=_identity
        )
        # HAProxy answers trailers-only, grpc-status 0, when a gRPC backend has a server UP.
        _, call = healthz.with_call(b"", timeout=10)
        assert call.code() == grpc.StatusCode.OK
        list_apps = channel.unary_unary(
            LIST_APPLICATIONS, request_serializer=_identity, response_deserializer=_identity
        )
        response, call = list_apps.with_call(b"", timeout=10)
        assert call.code() == grpc.StatusCode.OK
    names = strings_of_field_1(response)
    note(f"\ngRPC Healthz: OK; ListApplications (Serve's fallback proxy): {names}")
    assert sorted(names) == sorted(grpc_cluster.expected_routes.values())


def _grpc_servers(cluster: Cluster) -> list[dict[str, Any]]:
    """The replica servers of the gRPC app's backend in `ray-serve-haproxy status --json`."""
    servers = []
    for sock in cluster.status_json().get("sockets", []):
        for backend in sock.get("backends") or []:
            if backend.get("name") == BACKEND:
                servers += [
                    s
                    for s in backend.get("servers") or []
                    if str(s.get("name", "")).startswith("SERVE_REPLICA")
                ]
    return servers


def test_status_json_lists_the_grpc_backends_replicas_all_up(grpc_cluster: Cluster) -> None:
    workers = {w.ip: w.name for w in grpc_cluster.workers()}

    def all_up() -> list[dict[str, Any]] | None:
        servers = _grpc_servers(grpc_cluster)
        return servers if len(servers) == 2 and all(s["status"] == "UP" for s in servers) else None

    servers = wait_for(f"{BACKEND}'s 2 replica servers UP in `status --json`", all_up, timeout_s=60)
    summary = [(s["name"], s["address"], s["status"]) for s in servers]
    print(f"\n{BACKEND}: {summary}")
    hosts = set()
    for server in servers:
        ip, port = str(server["address"]).rsplit(":", 1)
        assert ip in workers, f"{server['name']} at {server['address']} is not on a worker"
        assert int(port) in GRPC_DIRECT_INGRESS_PORTS, server["address"]
        assert GRPC_APP in server["name"], server["name"]
        hosts.add(ip)
    assert len(hosts) == 2, f"{GRPC_APP}'s replicas are not on two workers: {summary}"


def test_worker_loss_under_grpc_load(grpc_cluster: Cluster, pb: tuple[Any, Any]) -> None:
    cluster = grpc_cluster
    # A third worker (test_4 killed one, or this file runs alone with two) so that Serve can
    # put the lost replica somewhere (max_replicas_per_node is 1).
    if len(cluster.workers()) < 3:
        start = time.monotonic()
        cluster.project.up("--scale", "worker=3")
        note(f"\nscaled to 3 workers in {time.monotonic() - start:.1f}s")
    assert len(cluster.workers()) == 3

    def two_up() -> list[dict[str, Any]] | None:
        servers = _grpc_servers(cluster)
        return servers if len(servers) == 2 and all(s["status"] == "UP" for s in servers) else None

    servers = wait_for(f"{BACKEND} with 2 servers UP", two_up, timeout_s=180)
    on_node = Counter(str(s["address"]).rsplit(":", 1)[0] for s in servers)
    workers = cluster.workers()
    victim = next(w for w in workers if on_node[w.ip])
    survivors = {w.ip for w in workers if w.ip != victim.ip}
    note(f"\n{BACKEND} servers per worker: {dict(on_node)}; killing {victim.name} ({victim.ip})")

    with GrpcLoad(cluster, pb, concurrency=CONCURRENCY) as load:
        fault = run_through(load, victim.container.kill, settle_s=5, steady_s=STEADY_S)
    samples = load.snapshot()
    elapsed = load.stopped_at - load.started_at
    report = FaultReport("gRPC", samples, fault)
    line = report.line(elapsed)
    note(f"gRPC node loss ({CONCURRENCY} clients): {line}")
    if report.failed:
        timeline = ", ".join(
            f"{s.outcome} sent {s.start - fault.at:+.2f}s ended {s.end - fault.at:+.2f}s"
            for s in report.failed[:10]
        )
        print(f"failed calls (first 10, relative to the kill): {timeline}")
        print(f"first failure: {report.failed[0].detail}")
    after = report.started_after(FULL_SERVICE_AFTER_S)
    by_node = dict(Counter(s.node_ip for s in after))
    print(f"answers sent 1 s or more after the kill, by node: {by_node}")
    assert not [s for s in samples if s.end < fault.at and not s.ok], "calls failed before the kill"
    # As test_4 for HTTP: only calls on their way when the worker died may fail...
    assert not report.failed_not_in_flight(), line
    assert len(report.failed) <= len(report.in_flight_at_fault), line
    # ...every call sent a second after the kill succeeds, from a surviving worker...
    assert len(after) > 200 and all(s.ok for s in after), line
    assert {s.node_ip for s in after} <= survivors, "answers from the dead node"
    # ...and no call that succeeded was held long, not even those sent during the kill.
    assert report.latency_problem() is None, report.latency_problem()

    # Serve replaces the lost replica on the third worker; HAProxy's gRPC backend follows.
    start = time.monotonic()

    def replaced() -> list[dict[str, Any]] | None:
        servers = two_up()
        addrs = {str(s["address"]).rsplit(":", 1)[0] for s in servers or []}
        return servers if servers and addrs <= survivors and len(addrs) == 2 else None

    servers = wait_for(f"{BACKEND} back to 2 servers UP on survivors", replaced, timeout_s=180)
    note(
        f"gRPC replica replaced and UP in HAProxy {time.monotonic() - start:.1f}s later"
        f" (at {sorted(str(s['address']) for s in servers)})"
    )
