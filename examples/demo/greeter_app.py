"""The gRPC demo application that `docker compose up` deploys (serve_config.yaml: `greeter`).

Implements rsh.demo.Greeter from demo.proto, whose Python code (demo_pb2, demo_pb2_grpc) the
image generates at build time. HAProxy's gRPC frontend on the head (RSH_GRPC_PORT, 9000)
routes a call by its `application` metadata to the app's replicas, which Serve's direct
ingress serves on their own gRPC ports (40000-41000). From the host, with stubs generated from
demo.proto (see docs/grpc.md):

    channel = grpc.insecure_channel("127.0.0.1:9000")
    stub = demo_pb2_grpc.GreeterStub(channel)
    stub.SayHello(demo_pb2.HelloRequest(name="ray"), metadata=[("application", "greeter")])

Every reply names the node and replica that produced it, like the HTTP demo. Over HTTP the
app's route only says where to call it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from demo_app import where
from demo_pb2 import HelloReply, HelloRequest, HelloStreamRequest
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

DEFAULT_STREAM_COUNT = 3
MAX_STREAM_COUNT = 1000
MAX_STREAM_INTERVAL_MS = 60_000


def reply(message: str, index: int = 0) -> HelloReply:
    who = where()
    return HelloReply(
        message=message,
        index=index,
        app=who["app"],
        deployment=who["deployment"],
        replica_id=who["replica_id"],
        replica=who["replica"],
        node_id=who["node_id"],
        node_ip=who["node_ip"],
        hostname=who["hostname"],
        pid=who["pid"],
    )


async def stream_replies(request: HelloStreamRequest) -> AsyncIterator[HelloReply]:
    """SayHelloStream's replies: `count` of them, `interval_ms` apart (asyncio.sleep, so a
    long stream never blocks the replica's other requests)."""
    count = min(max(request.count, 0), MAX_STREAM_COUNT) or DEFAULT_STREAM_COUNT
    interval_s = min(max(request.interval_ms, 0), MAX_STREAM_INTERVAL_MS) / 1000
    name = request.name or "world"
    for index in range(1, count + 1):
        if index > 1 and interval_s:
            await asyncio.sleep(interval_s)
        yield reply(f"hello, {name} ({index}/{count})", index)


@serve.deployment
class Greeter:
    """rsh.demo.Greeter: Serve calls the method named like the gRPC method."""

    async def SayHello(self, request: HelloRequest) -> HelloReply:
        return reply(f"hello, {request.name or 'world'}")

    async def SayHelloStream(self, request: HelloStreamRequest) -> AsyncIterator[HelloReply]:
        async for message in stream_replies(request):
            yield message

    async def __call__(self, request: Request) -> JSONResponse:
        """HTTP on the app's route: not the way to call it, but says which is."""
        return JSONResponse(
            {
                "message": "gRPC service rsh.demo.Greeter (demo.proto): call it on the gRPC "
                "port (RSH_GRPC_PORT) with metadata application=greeter",
                **where(),
            }
        )


greeter_app = Greeter.bind()
