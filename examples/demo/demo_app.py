"""The demo Serve applications that `docker compose up` deploys (serve_config.yaml).

Two applications on two route prefixes; every answer says which node and which replica
produced it, so a client can see HAProxy spread requests over replicas on several nodes:

    curl -s 127.0.0.1:8000/hello?name=ray
    curl -s -X POST 127.0.0.1:8000/echo/any/path?x=1 -d '{"some": "json"}'

Both are plain async deployments (no FastAPI): they never block the replica's event loop,
so one replica serves many concurrent requests (max_ongoing_requests in serve_config.yaml).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

# Bodies larger than this are summarised rather than echoed back.
MAX_ECHO_BYTES = 64 * 1024


def where() -> dict[str, Any]:
    """Identity of the node, container and replica answering this request."""
    context = serve.get_replica_context()
    runtime = ray.get_runtime_context()
    return {
        "app": context.app_name,
        "deployment": context.deployment,
        "replica_id": context.replica_id.unique_id,
        "replica": context.replica_id.to_full_id_str(),
        "node_id": runtime.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }


@serve.deployment
class Hello:
    """GET /hello[?name=NAME] -> a greeting and who answered."""

    async def __call__(self, request: Request) -> JSONResponse:
        name = request.query_params.get("name", "world")
        return JSONResponse({"message": f"hello, {name}", **where()})


@serve.deployment
class Echo:
    """ANY /echo[/PATH][?QUERY] -> the request as received (method, path, query, body)."""

    async def __call__(self, request: Request) -> JSONResponse:
        raw = await request.body()
        body: Any
        if len(raw) > MAX_ECHO_BYTES:
            body = {"truncated": True, "bytes": len(raw)}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", errors="replace")
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "body": body,
                **where(),
            }
        )


hello_app = Hello.bind()
echo_app = Echo.bind()
