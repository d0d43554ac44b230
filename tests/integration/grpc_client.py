"""gRPC from the host to the cluster: client stubs generated from the demo's .proto at test time,
one-connection channels, and a bounded gRPC load recorded like the HTTP load (load.Sample)."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import grpc
from grpc_tools import protoc

from .cluster import GRPC_APP, Cluster
from .load import Sample

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


class GrpcLoad:
    """`concurrency` threads, each with its own channel (connection), calling SayHello until
    stopped; every call is recorded like the HTTP load's requests (load.Sample)."""

    def __init__(
        self,
        cluster: Cluster,
        pb: tuple[Any, Any],
        *,
        concurrency: int,
        max_duration_s: float = 240,
    ) -> None:
        self.cluster = cluster
        self.pb = pb
        self.concurrency = concurrency
        self.max_duration_s = max_duration_s
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = self.stopped_at = 0.0

    def _worker(self, index: int) -> None:
        demo_pb2, demo_pb2_grpc = self.pb
        deadline = self.started_at + self.max_duration_s
        with channel(self.cluster) as chan:
            stub = demo_pb2_grpc.GreeterStub(chan)
            n = 0
            while not self._stop.is_set() and time.monotonic() < deadline:
                n += 1
                start = time.monotonic()
                try:
                    reply = stub.SayHello(
                        demo_pb2.HelloRequest(name=f"load-{index}-{n}"),
                        metadata=METADATA,
                        timeout=CALL_TIMEOUT_S,
                    )
                    ok = reply.app == GRPC_APP
                    sample = Sample(
                        start,
                        time.monotonic() - start,
                        ok,
                        "OK" if ok else "bad-reply",
                        reply.app,
                        reply.node_ip,
                    )
                except grpc.RpcError as exc:
                    code = exc.code()
                    sample = Sample(
                        start,
                        time.monotonic() - start,
                        False,
                        code.name if code else "RpcError",
                        detail=str(exc.details())[:200],
                    )
                with self._lock:
                    self.samples.append(sample)

    def start(self) -> GrpcLoad:
        self.started_at = time.monotonic()
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._worker, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT_S + 5)
        self.stopped_at = time.monotonic()
        return self.snapshot()

    def __enter__(self) -> GrpcLoad:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)
