"""The benchmark's gRPC app: rsh.demo.Greeter.SayHello (examples/demo/demo.proto) doing as
little as Ray Serve allows, like bench_app.py over HTTP.

The request and reply classes come from the demo's generated code, which the image holds
at /opt/ray-serve-haproxy/examples/demo (on RSH_PYTHONPATH, benchmarks/compose.bench.yaml).
Every reply is the same 4-byte message, so the load generator can tell from the bytes it
received that every call returned one (benchmarks/run.py).
"""

from demo_pb2 import HelloReply, HelloRequest
from ray import serve


@serve.deployment
class BenchGrpc:
    async def SayHello(self, request: HelloRequest) -> HelloReply:
        return HelloReply(message="ok")


app = BenchGrpc.bind()
