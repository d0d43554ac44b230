"""What the benchmark deploys and calls (benchmarks/app): names, routes and the gRPC bytes.

HTTP: app `bench` at /bench. gRPC: app `bench-grpc`, unary rsh.demo.Greeter/SayHello, called
with h2load. h2load counts HTTP statuses only (a failed call is HTTP 200 with grpc-status != 0
in the trailers): a call counts as OK when its reply message arrived, i.e. DATA bytes
received / len(GRPC_REPLY).
"""

from __future__ import annotations

APP_NAME = "bench"
DEPLOYMENT = "Bench"
ROUTE = "/bench"
REPLICAS = 2
BACKEND = f"http-{APP_NAME}"  # Ray names HAProxy's backends <protocol>-<app>

GRPC_APP = "bench-grpc"
GRPC_DEPLOYMENT = "BenchGrpc"
GRPC_BACKEND = f"grpc-{GRPC_APP}"
GRPC_PORT = 9000
GRPC_METHOD = "/rsh.demo.Greeter/SayHello"
GRPC_REQUEST_FILE = "/tmp/rshbench-hello.grpc"  # in the loadgen container
GRPC_HEADERS = ["content-type: application/grpc", "te: trailers", f"application: {GRPC_APP}"]
APPS = {APP_NAME: DEPLOYMENT, GRPC_APP: GRPC_DEPLOYMENT}
HTTP_PORT = 8000


def grpc_message(payload: bytes) -> bytes:
    """One length-prefixed gRPC message: not compressed, 4-byte big-endian length."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def proto_string(field_number: int, text: str) -> bytes:
    """A protobuf string field (wire type 2) shorter than 128 bytes."""
    data = text.encode()
    assert len(data) < 128
    return bytes([field_number << 3 | 2, len(data)]) + data


GRPC_REQUEST = grpc_message(proto_string(1, "bench"))  # HelloRequest{name: "bench"}
GRPC_REPLY = grpc_message(proto_string(1, "ok"))  # HelloReply{message: "ok"}
