"""Side-by-side benchmark of the compose cluster (entry point: scripts/benchmark.sh).

Paths to the same HTTP app (benchmarks/app: two replicas, one on each worker):

  haproxy       HAProxy mode (the image's default), through the head's :8000
  python_proxy  the same cluster restarted with RAY_SERVE_ENABLE_HA_PROXY=0, Ray's Python
                proxy on the head's :8000
  direct        the replicas' own direct-ingress ports (30000+ on the workers), wrk's
                threads spread over the replicas: the floor no proxy can beat
  entry         when compose.yaml has the high-availability `entry` service: its :8000,
                an HAProxy in front of every node's HAProxy (in the haproxy phase)

plus variants on their own cluster starts: HAProxy with RAY_SERVE_HAPROXY_NBTHREAD=N, and
HAProxy with each access-log mode / Serve metrics pair of --log-modes (at the scoring level).
The same three paths for gRPC (app bench-grpc, unary rsh.demo.Greeter/SayHello, at
--grpc-levels only). Load comes from wrk (HTTP) and h2load (gRPC) in their own container on
the compose network; it is sent only to the project's own containers. Every (path,
concurrency) gets a warm-up and several rounds; medians are quoted with min and max. Paths
measured on the same cluster are interleaved round by round, so drift hits them alike.

Scored: CPU per request on each path's entry node (its container's cgroup CPU time plus the
host's dockerd and containerd shims, in a window inside every round), latency added at
concurrency 1 against the direct path, throughput and p99 ratios (benchmarks/scoring.py;
results document: benchmarks/results.schema.json).

Writes <out>/<name>.json, <name>.md and <name>.png (default benchmarks/results/latest.*; the
name `latest` also rewrites the tables of docs/benchmark.md and README's headline).
`--render-only FILE.json` redraws the table and chart from an earlier result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .apps import GRPC_APP, GRPC_METHOD, GRPC_PORT, GRPC_REPLY, GRPC_REQUEST, REPLICAS, ROUTE
from .compose_cluster import REPO, Cluster
from .console import print_summary
from .load_settings import LoadSettings
from .machine import machine_info, other_activity, wait_for_quiet
from .measure import MeasureSettings, cpu_lead_s, measure_phase
from .outputs import write_outputs
from .paths_meta import legacy_paths, path_meta
from .phases import ENTRY_SERVICE, Phase, build_phases, parse_log_modes
from .readiness import wait_ready
from .scoring import analyze
from .shell import BenchError, log

SCHEMA_VERSION = 2


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--levels", default="1,16,64,256", help="concurrency levels (default 1,16,64,256)"
    )
    ap.add_argument(
        "--grpc-levels",
        default="64",
        help="levels (of --levels) that also measure gRPC (default 64; '' or 0: no gRPC)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10, help="seconds per round")
    ap.add_argument("--warmup", type=float, default=5, help="seconds of warm-up per path and level")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wrk threads")
    ap.add_argument("--timeout", type=float, default=5, help="wrk request timeout, seconds")
    ap.add_argument("--variant-nbthread", type=int, default=4, help="0 skips the NBTHREAD variant")
    ap.add_argument(
        "--phases",
        default="haproxy,python,variant,logmodes",
        help="cluster configurations to run (default all: haproxy,python,variant,logmodes)",
    )
    ap.add_argument(
        "--log-modes",
        default="all:1,errors:1,off:0",
        help="RSH_ACCESS_LOG:RAY_SERVE_HAPROXY_METRICS_ENABLED pairs of the logmodes phases "
        "(default all:1,errors:1,off:0, the three goals of issue 18)",
    )
    ap.add_argument(
        "--log-mode-levels",
        default="",
        help="levels of the logmodes phases (default: the --target-level)",
    )
    ap.add_argument(
        "--idle", type=float, default=5, help="seconds of idle CPU window per phase (0: none)"
    )
    ap.add_argument(
        "--target-level", type=int, default=64, help="the level the goals are scored at"
    )
    ap.add_argument("--latency-level", type=int, default=1, help="the level of 'latency added'")
    ap.add_argument("--project", default=os.environ.get("RSH_BENCH_PROJECT", "rshbench"))
    ap.add_argument("--image", default=os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest"))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--name", default="latest", help="output file stem (default latest)")
    ap.add_argument("--wait-timeout", type=int, default=300, help="cluster start timeout, seconds")
    ap.add_argument(
        "--max-wait-others", type=float, default=1800, help="seconds to wait for other work"
    )
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for head and workers in every phase (experiments)",
    )
    ap.add_argument("--keep", action="store_true", help="leave the last cluster running")
    ap.add_argument("--render-only", type=Path, help="redraw table and chart from a result JSON")
    args = ap.parse_args(argv)
    args.levels = [int(x) for x in str(args.levels).split(",") if x]
    grpc_levels = {int(x) for x in str(args.grpc_levels).split(",") if x.strip()}
    args.grpc_levels = [lv for lv in args.levels if lv in grpc_levels]
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    try:
        args.log_modes = parse_log_modes(args.log_modes)
    except ValueError as exc:
        ap.error(str(exc))
    args.log_mode_levels = [int(x) for x in str(args.log_mode_levels).split(",") if x.strip()] or [
        args.target_level
    ]
    bad = [e for e in args.env if "=" not in e]
    if bad:
        ap.error(f"--env wants KEY=VALUE, got {bad}")
    args.env = dict(e.split("=", 1) for e in args.env)
    return args


def new_document(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """The results document before any measurement (results.schema.json)."""
    return {
        "schema": SCHEMA_VERSION,
        "name": args.name,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "bash scripts/benchmark.sh " + " ".join(argv)
        if argv
        else "bash scripts/benchmark.sh",
        "machine": machine_info(args.image),
        "settings": {
            "levels": args.levels,
            "grpc_levels": args.grpc_levels,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "threads": args.threads,
            "timeout_s": args.timeout,
            "target_level": args.target_level,
            "latency_level": args.latency_level,
            "idle_s": args.idle,
            "cpu_window_lead_s": cpu_lead_s(args.duration),
            "log_modes": [f"{m.access_log}:{int(m.metrics)}" for m in args.log_modes],
            "extra_env": args.env,
            "app": {
                "route": ROUTE,
                "replicas": REPLICAS,
                "config": "benchmarks/app/serve_config.yaml",
            },
            "grpc": {
                "app": GRPC_APP,
                "method": GRPC_METHOD,
                "port": GRPC_PORT,
                "load_generator": "h2load, one call in flight per connection",
                "request_hex": GRPC_REQUEST.hex(),
                "reply_bytes": len(GRPC_REPLY),
            },
        },
        "variant_path": None,
        "variant_nbthread": None,
        "phases": {},
        "paths": {},
        "results": {},
        "contended": [],
    }


def run_phases(
    args: argparse.Namespace,
    cluster: Cluster,
    phases: list[Phase],
    data: dict[str, Any],
    t0: float,
) -> None:
    settings = MeasureSettings(
        load=LoadSettings(threads=args.threads, timeout_s=args.timeout),
        rounds=args.rounds,
        duration_s=args.duration,
        warmup_s=args.warmup,
        idle_s=args.idle,
    )
    log(f"project {args.project}, image {args.image}, phases {[p.name for p in phases]}")
    cluster.down()  # leftovers of an interrupted run
    complete = False
    try:
        for i, phase in enumerate(phases):
            others = wait_for_quiet(args.project, args.max_wait_others)
            data["contended"] += [o for o in others if o not in data["contended"]]
            log(f"phase {phase.name}: starting the cluster with {phase.env}")
            t = time.monotonic()
            cluster.up(phase, args.wait_timeout)
            phase.info["up_s"] = round(time.monotonic() - t, 1)
            wait_ready(cluster, phase, args.wait_timeout)
            phase.info["ready_s"] = round(time.monotonic() - t, 1)
            phase.info["env"] = phase.env
            log(f"phase {phase.name}: ready in {phase.info['ready_s']}s {_phase_brief(phase)}")
            if other_activity(args.project):
                others = wait_for_quiet(args.project, args.max_wait_others)
                data["contended"] += [o for o in others if o not in data["contended"]]
            results: dict[str, Any] = {}
            measure_phase(cluster, phase, settings, results)
            data["results"].update(results)
            for path in phase.paths:
                if phase.result_key(path) in results:
                    data["paths"][phase.result_key(path)] = path_meta(phase, path)
            data["phases"][phase.name] = phase.info
            if i < len(phases) - 1 or not args.keep:
                cluster.down()
        complete = True
    finally:
        if not complete:
            log("interrupted or failed: tearing the cluster down")
            if not args.keep:
                cluster.down()
        data["complete"] = complete
        data["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        data["runtime_s"] = round(time.monotonic() - t0, 1)
        if data["results"]:
            if not complete:
                data["name"] = f"{args.name}.incomplete"
            analyze(data)
            write_outputs(data, args.out)
            print_summary(data)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.render_only:
        data = json.loads(args.render_only.read_text())
        data["name"] = args.render_only.stem  # rewrites FILE.md and .png beside it, no other
        data.setdefault("paths", legacy_paths(data))
        analyze(data)
        write_outputs(data, args.render_only.parent)
        print_summary(data)
        return 0

    signal.signal(signal.SIGTERM, _interrupt)  # tear down on SIGTERM like on Ctrl-C
    t0 = time.monotonic()
    cluster = Cluster(args.project, args.image)
    entry = ENTRY_SERVICE in cluster.services()
    phases = build_phases(
        args.phases,
        levels=args.levels,
        grpc_levels=args.grpc_levels,
        variant_nbthread=args.variant_nbthread,
        log_modes=args.log_modes,
        log_mode_levels=args.log_mode_levels,
        extra_env=args.env,
        entry=entry,
    )
    data = new_document(args, argv)
    variant = next((p for p in phases if p.name.startswith("haproxy_nbthread")), None)
    if variant is not None:
        data["variant_path"] = variant.name
        data["variant_nbthread"] = args.variant_nbthread
    run_phases(args, cluster, phases, data, t0)
    log(f"done in {data['runtime_s'] / 60:.1f} min")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _phase_brief(phase: Phase) -> str:
    if phase.haproxy:
        return (
            f"(nbthread {phase.info.get('nbthread')}, replicas {phase.info.get('replicas')}, "
            f"settings {phase.info.get('runtime_settings')})"
        )
    return "(no haproxy on the head)"


def entry() -> None:
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        log(f"FAILED: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
