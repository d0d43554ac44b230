"""gRPC from the host to the cluster: client stubs generated from the demo's .proto at test time,
one-connection channels, and a bounded gRPC load recorded like the HTTP load (load.Sample)."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from grpc_tools import protoc

from .cluster import GRPC_APP, Cluster
from .load import LoadLoop, PerCall, Sample

PROTO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "demo.proto"
METADATA = (("application", GRPC_APP),)
CALL_TIMEOUT_S = 10.0


def generate_stubs(out: Path) -> tuple[Any, Any]:
    """(demo_pb2, demo_pb2_grpc) generated from the repository's demo.proto into `out`."""
    argv = ["grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={out}"]
    argv += [f"--grpc_python_out={out}", str(PROTO)]
    assert protoc.main(argv) == 0, f"protoc failed on {PROTO}"
    sys.path.insert(0, str(out))
    try:
        modules: list[ModuleType] = [
            importlib.import_module("demo_pb2"),
            importlib.import_module("demo_pb2_grpc"),
        ]
    finally:
        sys.path.remove(str(out))
    return modules[0], modules[1]


def channel(cluster: Cluster) -> grpc.Channel:
    # Its own connection (no subchannel shared with other channels to the same target).
    return grpc.insecure_channel(
        cluster.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
    )


class GrpcLoad(LoadLoop):
    """`concurrency` threads, each with its own channel (connection), calling SayHello until
    stopped; every call is recorded like the HTTP load's requests (load.Sample)."""

    def __init__(
        self,
        cluster: Cluster,
        pb: tuple[Any, Any],
        *,
        concurrency: int,
        max_duration_s: float = 240,
        per_client_rate: float | None = None,
    ) -> None:
        self.cluster = cluster
        self.pb = pb
        super().__init__(
            self._channel_calls,
            concurrency=concurrency,
            max_duration_s=max_duration_s,
            per_client_rate=per_client_rate,
            join_timeout_s=CALL_TIMEOUT_S + 5,
        )

    @contextmanager
    def _channel_calls(self, index: int) -> Iterator[PerCall]:
        demo_pb2, demo_pb2_grpc = self.pb
        with channel(self.cluster) as chan:
            stub = demo_pb2_grpc.GreeterStub(chan)

            def call(n: int) -> Sample:
                start = time.monotonic()
                try:
                    reply = stub.SayHello(
                        demo_pb2.HelloRequest(name=f"load-{index}-{n}"),
                        metadata=METADATA,
                        timeout=CALL_TIMEOUT_S,
                    )
                except grpc.RpcError as exc:
                    code = exc.code()
                    return Sample(
                        start,
                        time.monotonic() - start,
                        False,
                        code.name if code else "RpcError",
                        detail=str(exc.details())[:200],
                    )
                ok = reply.app == GRPC_APP
                return Sample(
                    start,
                    time.monotonic() - start,
                    ok,
                    "OK" if ok else "bad-reply",
                    reply.app,
                    reply.node_ip,
                )

            yield call
