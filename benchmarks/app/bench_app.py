"""The benchmark's app: as little work per request as Ray Serve allows.

Every path the benchmark compares (HAProxy, Ray's Python proxy, the replicas' own
direct-ingress ports) ends in this handler, so the differences measured are the
proxies' and not the app's.
"""

from ray import serve
from starlette.requests import Request
from starlette.responses import PlainTextResponse


@serve.deployment
class Bench:
    async def __call__(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok\n")


app = Bench.bind()
