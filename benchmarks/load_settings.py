"""How every load generator runs (wrk for HTTP, h2load for gRPC): the one module they share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadSettings:
    threads: int  # load generator threads (wrk), split across replicas on direct paths
    timeout_s: float  # request timeout
