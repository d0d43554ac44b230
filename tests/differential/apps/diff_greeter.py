"""gRPC side of the differential corpus: rsh.demo.Greeter (examples/demo/demo.proto, whose
generated demo_pb2 modules the image holds in /opt/ray-serve-haproxy/examples/demo) with a
method that raises on request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from demo_pb2 import HelloReply, HelloRequest, HelloStreamRequest
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse


@serve.deployment
class DiffGreeter:
    async def SayHello(self, request: HelloRequest) -> HelloReply:
        if request.name == "raise":
            raise RuntimeError("the replica raised on purpose")
        if request.name == "slow":
            await asyncio.sleep(5)
        return HelloReply(message=f"hello, {request.name or 'world'}", app="greeter")

    async def SayHelloStream(self, request: HelloStreamRequest) -> AsyncIterator[HelloReply]:
        count = max(request.count, 1)
        for index in range(1, count + 1):
            yield HelloReply(message=f"hello {index}/{count}", index=index, app="greeter")
            if index < count:
                await asyncio.sleep(0.3)

    async def __call__(self, request: Request) -> JSONResponse:
        return JSONResponse({"app": "greeter"})


greeter_app = DiffGreeter.bind()
