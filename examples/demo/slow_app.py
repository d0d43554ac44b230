"""The demo's long requests (serve_config.yaml: `slow`): answers that take their time, to see
a request outlive the HAProxy reloads that every change of replicas causes.

    curl -s '127.0.0.1:8000/slow?seconds=60'                      # one JSON answer after 60 s
    curl -sN '127.0.0.1:8000/slow/stream?seconds=60&interval=0.5'  # a line every 0.5 s for 60 s

With `&id=ID` (letters, digits, `-`, `_`; at most 64) a replica logs `slow: request ID started`
to its Serve log file as it starts the work: the tests count those lines to prove that no
request ran twice (tests/integration/test_3_survive_reloads.py).

The stream is JSON lines numbered from 1 (`{"index": 1, "count": 120, ...}`), then a last line
`{"done": true, "count": 120}`, so a client can tell a complete stream from a cut one.
Over gRPC (metadata application=slow) the app answers the Greeter service of demo.proto,
SayHelloStream with `interval_ms` included. Everything waits with asyncio.sleep: one replica
holds many slow requests at once (max_ongoing_requests in serve_config.yaml).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator

from demo_app import where
from demo_pb2 import HelloReply, HelloRequest, HelloStreamRequest
from greeter_app import reply, stream_replies
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

MAX_SECONDS = 600.0
MIN_INTERVAL_S = 0.01
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Serve's replica logger: its lines go to the replica's file under logs/serve/ on its node.
logger = logging.getLogger("ray.serve")


def _number(request: Request, name: str, default: float, low: float, high: float) -> float:
    try:
        value = float(request.query_params.get(name, default))
    except ValueError:
        return default
    return min(max(value, low), high)


@serve.deployment
class Slow:
    """GET /slow?seconds=S (default 0) and GET /slow/stream?seconds=S&interval=I."""

    async def __call__(self, request: Request) -> Response:
        seconds = _number(request, "seconds", 0.0, 0.0, MAX_SECONDS)
        request_id = request.query_params.get("id", "")
        if REQUEST_ID.fullmatch(request_id):
            logger.info("slow: request %s started", request_id)
        if request.url.path.rstrip("/").endswith("/stream"):
            interval = _number(request, "interval", 1.0, MIN_INTERVAL_S, MAX_SECONDS)
            count = max(1, round(seconds / interval))
            return StreamingResponse(self._lines(count, interval), media_type="application/jsonl")
        await asyncio.sleep(seconds)
        return JSONResponse({"slept": seconds, **where()})

    async def _lines(self, count: int, interval: float) -> AsyncIterator[str]:
        who = where()
        for index in range(1, count + 1):
            yield json.dumps({"index": index, "count": count, **who}) + "\n"
            await asyncio.sleep(interval)
        yield json.dumps({"done": True, "count": count}) + "\n"

    # gRPC: the Greeter service of demo.proto, reached with metadata application=slow.
    async def SayHello(self, request: HelloRequest) -> HelloReply:
        return reply(f"hello, {request.name or 'world'}")

    async def SayHelloStream(self, request: HelloStreamRequest) -> AsyncIterator[HelloReply]:
        async for message in stream_replies(request):
            yield message


slow_app = Slow.bind()
