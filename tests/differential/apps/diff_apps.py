"""Serve applications for the differential test (tests/differential): the same apps answer
through Ray's Python proxy and through HAProxy, so any difference a client sees comes from
the proxy, not from the app.

Every answer is deterministic (no replica ids, no timestamps) unless a case needs to know
which replica answered (multiplexing). Mounted read-only into every node and put on
RSH_PYTHONPATH by compose.diff.yaml; deployed by the test through the dashboard's REST API
(serve_config.yaml).
"""

# No `from __future__ import annotations` here: FastAPI resolves endpoint parameter types
# (Request, WebSocket) from the annotations, which must stay real objects.
import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from starlette.requests import Request as StarletteRequest

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PURGE"]
# Request headers an app may care about; echoed back with their values.
ECHOED_HEADERS = (
    "content-type",
    "content-length",
    "transfer-encoding",
    "expect",
    "connection",
    "x-request-id",
    "serve_multiplexed_model_id",
    "x-large",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "via",
)


def pattern(size: int) -> bytes:
    """`size` deterministic bytes (the client computes the same to check a download)."""
    block = bytes(range(256))
    return block * (size // 256) + block[: size % 256]


def request_id() -> str:
    return str(serve.context._get_serve_request_context().request_id)


def replica_id() -> str:
    return str(serve.get_replica_context().replica_id.unique_id)


api = FastAPI()


@serve.deployment
@serve.ingress(api)
class Api:
    """The main corpus app (route prefix /api): echo, bodies, streams, WebSocket, errors."""

    def __init__(self) -> None:
        # key -> what happened to a /track request (one replica: the test deploys one).
        self.tracked: dict[str, str] = {}

    @api.get("/")
    async def index(self) -> dict[str, str]:
        return {"app": "api", "endpoint": "index"}

    @api.api_route("/echo{rest:path}", methods=ALL_METHODS)
    async def echo(self, request: Request, rest: str = "") -> Response:
        body = await request.body()
        scope = request.scope
        data: dict[str, Any] = {
            "method": request.method,
            "path": scope["path"],
            "raw_path": bytes(scope.get("raw_path") or b"").decode("latin-1"),
            "root_path": scope.get("root_path", ""),
            "rest": rest,
            "query_string": bytes(scope.get("query_string") or b"").decode("latin-1"),
            "query": [list(item) for item in request.query_params.multi_items()],
            "http_version": scope.get("http_version"),
            "body_bytes": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "headers": {
                name: request.headers.getlist(name)
                for name in ECHOED_HEADERS
                if name in request.headers
            },
            "header_count": len(request.headers),
            "request_id": request_id(),
        }
        if request.method == "HEAD":
            return Response(headers={"x-echo-method": "HEAD"})
        return JSONResponse(data)

    @api.get("/bytes")
    async def download(self, n: int = 1024) -> Response:
        return Response(pattern(n), media_type="application/octet-stream")

    @api.get("/stream")
    async def stream(self, n: int = 5, delay: float = 0.3) -> StreamingResponse:
        async def lines() -> AsyncIterator[str]:
            for i in range(1, n + 1):
                yield f"line {i}\n"
                if i < n:
                    await asyncio.sleep(delay)

        return StreamingResponse(lines(), media_type="text/plain")

    @api.get("/sse")
    async def sse(self, n: int = 3, delay: float = 0.3) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            for i in range(1, n + 1):
                yield f"id: {i}\nevent: tick\ndata: event {i}\n\n"
                if i < n:
                    await asyncio.sleep(delay)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    @api.websocket("/ws")
    async def ws(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                if text == "bye":
                    await websocket.close(code=4000, reason="bye")
                    return
                await websocket.send_text(f"echo: {text}")
        except WebSocketDisconnect:
            return

    @api.get("/raise")
    async def fail(self) -> None:
        raise RuntimeError("the replica raised on purpose")

    @api.get("/slow")
    async def slow(self, s: float = 5.0) -> dict[str, float]:
        await asyncio.sleep(s)
        return {"slept": s}

    @api.get("/track")
    async def track(self, key: str, s: float = 3.0) -> dict[str, str]:
        self.tracked[key] = "started"
        try:
            await asyncio.sleep(s)
        except asyncio.CancelledError:
            self.tracked[key] = "cancelled"
            raise
        self.tracked[key] = "completed"
        return {"key": key}

    @api.get("/tracked")
    async def tracked_state(self, key: str) -> dict[str, str | None]:
        return {"key": key, "state": self.tracked.get(key)}

    @api.get("/big-header")
    async def big_header(self, n: int = 12000) -> Response:
        return Response("ok", headers={"x-big": "b" * n}, media_type="text/plain")

    @api.get("/status/{code}")
    async def status(self, code: int) -> Response:
        if code in (204, 304):
            return Response(status_code=code)
        return Response(f"status {code}", status_code=code, media_type="text/plain")


@serve.deployment
class Where:
    """A plain (non-FastAPI) app that says which app got the request and with what path."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, request: StarletteRequest) -> JSONResponse:
        scope = request.scope
        return JSONResponse(
            {
                "app": self.name,
                "path": scope["path"],
                "root_path": scope.get("root_path", ""),
                "method": request.method,
            }
        )


@serve.deployment
class Multiplexed:
    """Model multiplexing on the ingress deployment: the model id comes from the
    `serve_multiplexed_model_id` header, and the Python proxy routes by it."""

    def __init__(self) -> None:
        self.loads = 0

    @serve.multiplexed(max_num_models_per_replica=4)
    async def get_model(self, model_id: str) -> str:
        self.loads += 1
        return f"model {model_id}"

    async def __call__(self, request: StarletteRequest) -> JSONResponse:
        model_id = serve.get_multiplexed_model_id()
        model = await self.get_model(model_id) if model_id else None
        return JSONResponse(
            {"model_id": model_id, "model": model, "replica": replica_id(), "loads": self.loads}
        )


@serve.deployment
class MultiplexedModel:
    """The multiplexed models behind an ingress (what works in both modes)."""

    @serve.multiplexed(max_num_models_per_replica=4)
    async def get_model(self, model_id: str) -> str:
        return f"model {model_id}"

    async def __call__(self, model_id: str) -> dict[str, str]:
        assert serve.get_multiplexed_model_id() == model_id
        return {
            "model_id": model_id,
            "model": await self.get_model(model_id),
            "replica": replica_id(),
        }


@serve.deployment
class MultiplexFront:
    """Ingress that forwards the model id through a deployment handle."""

    def __init__(self, models: Any) -> None:
        self.models = models

    async def __call__(self, request: StarletteRequest) -> JSONResponse:
        model_id = request.headers.get("serve_multiplexed_model_id", "")
        if not model_id:
            return JSONResponse({"model_id": "", "model": None, "replica": replica_id()})
        answer = await self.models.options(multiplexed_model_id=model_id).remote(model_id)
        return JSONResponse(answer)


api_app = Api.bind()
v1_app = Where.bind("v1")
root_app = Where.bind("root")
mux_app = Multiplexed.bind()
mux_handle_app = MultiplexFront.bind(MultiplexedModel.bind())
