"""The differential run: one compose project (compose.yaml + compose.diff.yaml) brought up
twice, in HAProxy mode and with Ray's Python proxy (RAY_SERVE_ENABLE_HA_PROXY=0), the corpus
(corpus.py) sent through each, phase by phase. The project gets its own name (rshdiff-<pid>)
and free 127.0.0.1 ports, and is torn down whatever happens.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import requests
import yaml
from integration.cluster import Cluster, note, wait_for

from . import corpus
from .compare import MODES
from .corpus import Observation, Target

if TYPE_CHECKING:
    from conftest import ClusterToken, ComposeProject

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
COMPOSE_FILE = REPO / "compose.yaml"
DIFF_COMPOSE_FILE = HERE / "compose.diff.yaml"
CORPUS_CONFIG = HERE / "apps" / "serve_config.yaml"
CORPUS_CONFIG_IN_CONTAINER = "/opt/rsh-diff/serve_config.yaml"  # compose.diff.yaml's mount
PREFIX = "rshdiff-"
ROOT_APP = "root"
# Replicas the multiplexing cases need HAProxy / the proxy to know about before they run.
MUX_REPLICAS = 2
UP_TIMEOUT_S = 420
DEPLOY_TIMEOUT_S = 300
# From RUNNING to every app answering through the proxy: seconds, normally.
SERVING_TIMEOUT_S = 120
# Between Serve having started and the before-the-first-deploy cases.
EMPTY_SETTLE_S = 5
# A case during which the head's HAProxy was replaced by a reload is run again, at most this many
# times: a soft-stopping HAProxy closes keep-alive connections (`Connection: close`), an effect
# of the reload (tests/integration/test_3_survive_reloads.py), not of HAProxy mode.
RELOAD_RERUNS = 2


def corpus_config(with_root: bool) -> dict[str, Any]:
    config = yaml.safe_load(CORPUS_CONFIG.read_text())
    if not with_root:
        config["applications"] = [a for a in config["applications"] if a["name"] != ROOT_APP]
    return dict(config)


def expected_routes(config: dict[str, Any]) -> dict[str, str]:
    return {app["route_prefix"]: app["name"] for app in config["applications"]}


class ModeRun:
    """One mode's cluster: up, phases, down."""

    def __init__(
        self,
        mode: str,
        compose_project: Callable[..., ComposeProject],
        host_port: Callable[[], int],
        pb: tuple[Any, Any],
        token: ClusterToken,
    ) -> None:
        self.mode = mode
        ports = {
            "RSH_HTTP_HOST_PORT": host_port(),
            "RSH_DASHBOARD_HOST_PORT": host_port(),
            "RSH_METRICS_HOST_PORT": host_port(),
            "RSH_GRPC_HOST_PORT": host_port(),
        }
        env = {k: str(v) for k, v in ports.items()}
        env["RSH_DIFF_HA_PROXY"] = "1" if mode == "haproxy" else "0"
        # The project's own token, handed to every node as compose's secret.
        env["RSH_RAY_TOKEN_FILE"] = str(token.node)
        self.project = compose_project(
            f"{PREFIX}{os.getpid()}", env=env, files=[COMPOSE_FILE, DIFF_COMPOSE_FILE]
        )
        self.cluster = Cluster(
            self.project,
            http_port=ports["RSH_HTTP_HOST_PORT"],
            dashboard_port=ports["RSH_DASHBOARD_HOST_PORT"],
            metrics_port=ports["RSH_METRICS_HOST_PORT"],
            grpc_port=ports["RSH_GRPC_HOST_PORT"],
            token=token,
        )
        self.target = Target(self.cluster.http_port, self.cluster.grpc_port, *pb)
        self.timings: dict[str, float] = {}
        self.reruns: list[str] = []  # cases run again because HAProxy reloaded during them

    # -- bring-up --------------------------------------------------------------------------

    def up(self) -> None:
        assert not self.project.containers(include_stopped=True), (
            f"project {self.project.name} already exists"
        )
        start = time.monotonic()
        self.project.up(wait_timeout_s=UP_TIMEOUT_S)
        self.wait_serve_started()
        self.timings["up"] = time.monotonic() - start

    def wait_serve_started(self) -> None:
        """Until the head's serve-up left its ready marker and the proxy answers healthz."""

        def started() -> bool:
            code, _ = self.cluster.exec_head(["cat", "/tmp/ray-serve-haproxy/serve-ready"])
            if code != 0:
                failed = self.cluster.exec_head(["cat", "/tmp/ray-serve-haproxy/serve-failed"])
                if failed[0] == 0:
                    pytest.fail(f"serve-up failed in {self.mode} mode: {failed[1]}")
                return False
            return self.cluster.get("/-/healthz").status_code in (200, 503)

        wait_for(f"Serve started ({self.mode})", started, timeout_s=DEPLOY_TIMEOUT_S, interval_s=1)

    def deploy(self, config: dict[str, Any], phase: str) -> None:
        start = time.monotonic()
        self.cluster.deploy(copy.deepcopy(config))
        names = {app["name"] for app in config["applications"]}
        routes = expected_routes(config)

        def running() -> bool:
            statuses = self.cluster.app_statuses()
            failed = {n: s for n, s in statuses.items() if s == "DEPLOY_FAILED"}
            if failed:
                apps = self.cluster.applications()
                pytest.fail(f"deploy failed: {json.dumps({n: apps[n] for n in failed})[:3000]}")
            return all(statuses.get(n) == "RUNNING" for n in names)

        wait_for(f"{sorted(names)} RUNNING", running, timeout_s=DEPLOY_TIMEOUT_S, interval_s=1)

        not_yet = ["nothing probed"]

        def serving() -> bool:
            def why(reason: str) -> bool:
                not_yet[0] = reason
                return False

            health = self.cluster.get("/-/healthz")
            if health.status_code != 200:
                return why(f"/-/healthz {health.status_code} {health.text[:80]!r}")
            if self.cluster.routes() != routes:
                return why(f"/-/routes {self.cluster.routes()}")
            for path in ("/api/", "/api/v1", "/mux", "/muxhandle", "/greeter"):
                answer = self.cluster.get(path)
                if answer.status_code != 200:
                    return why(f"{path} {answer.status_code} {answer.text[:80]!r}")
            seen = {self.cluster.get("/mux").json()["replica"] for _ in range(12)}
            if len(seen) != MUX_REPLICAS:
                return why(f"/mux answered from {len(seen)} replica(s)")
            return self.grpc_answers() or why("gRPC SayHello failed")

        try:
            wait_for(f"every app answering ({self.mode})", serving, timeout_s=SERVING_TIMEOUT_S)
        except BaseException:
            print(f"[diff] not serving yet: {not_yet[0]}")
            raise
        self.timings[f"deploy {phase}"] = time.monotonic() - start

    def grpc_answers(self) -> bool:
        with grpc.insecure_channel(self.cluster.grpc_target) as channel:
            stub = self.target.pb2_grpc.GreeterStub(channel)
            try:
                stub.SayHello(
                    self.target.pb2.HelloRequest(name="probe"),
                    metadata=corpus.APP_METADATA,
                    timeout=5,
                )
            except grpc.RpcError:
                return False
        return True

    # -- the corpus ------------------------------------------------------------------------

    def run_phase(self, phase: str, observations: dict[str, Observation]) -> None:
        start = time.monotonic()
        cases = [c for c in corpus.CASES if c.phase == phase]
        background = [
            (c, threading.Thread(target=self._run_into, args=(c, observations), daemon=True))
            for c in cases
            if c.background
        ]
        for _, thread in background:
            thread.start()
        for c in cases:
            if not c.background:
                self._run_into(c, observations)
        for c, thread in background:
            thread.join(timeout=120)
            assert not thread.is_alive(), f"background case {c.name} did not finish"
        self.timings[f"cases {phase}"] = time.monotonic() - start

    def _run_into(self, c: corpus.Case, observations: dict[str, Observation]) -> None:
        for _ in range(RELOAD_RERUNS):
            before = self.haproxy_started()
            observations[c.name] = corpus.run_case(c, self.target)
            after = self.haproxy_started()
            if before == after:
                return
            self.reruns.append(f"{c.name} (HAProxy started {before} -> {after})")
        observations[c.name] = corpus.run_case(c, self.target)

    def haproxy_started(self) -> str | None:
        """When the head's serving HAProxy process started (its exporter's
        haproxy_process_start_time_seconds), which a reload changes; None with the Python proxy."""
        if self.mode != "haproxy":
            return None
        try:
            text = requests.get(f"{self.cluster.metrics_url}?scope=global", timeout=5).text
        except requests.RequestException as exc:
            return type(exc).__name__
        found = re.search(r"^haproxy_process_start_time_seconds (\S+)$", text, re.MULTILINE)
        return found.group(1) if found else None

    def worker_targets(self) -> list[Target]:
        """Each worker's own Serve proxy (HAProxy or Python) on its published port."""
        targets = []
        for worker in self.cluster.workers():
            bindings = worker.container.attrs["NetworkSettings"]["Ports"].get("8000/tcp") or []
            assert bindings, f"{worker.name} publishes no 8000 (compose.diff.yaml)"
            port = int(bindings[0]["HostPort"])
            targets.append(
                Target(port, self.target.grpc_port, self.target.pb2, self.target.pb2_grpc)
            )
        return targets

    def with_setting(self) -> dict[str, Observation]:
        """BUFSIZE_CASES against every worker, whose HAProxy runs with a raised
        RAY_SERVE_HAPROXY_TUNE_BUFSIZE: case -> observation (of the first worker that
        differs from the others, else the common one)."""
        by_case: dict[str, Observation] = {}
        for c in (c for c in corpus.CASES if c.name in corpus.BUFSIZE_CASES):
            seen = [corpus.run_case(c, target) for target in self.worker_targets()]
            by_case[c.name] = next((o for o in seen if o != seen[0]), seen[0])
        return by_case

    def versions(self) -> dict[str, str]:
        _, haproxy = self.cluster.exec_head(["sh", "-c", "haproxy -v | head -n 1"])
        _, ray = self.cluster.exec_head(["python", "-c", "import ray; print(ray.__version__)"])
        found = re.search(r"version (\d+\.\d+\.\d+)", haproxy)
        return {
            "haproxy": found.group(1) if found else haproxy.strip(),
            "ray": ray.strip().splitlines()[-1],
        }

    def runtime_outputs(self) -> dict[str, str]:
        """`check` and serve-up (the head's start-up program, run again on the running Serve:
        it deploys what already runs) with the corpus as RSH_SERVE_CONFIG."""
        # As supervisord runs it: RSH_PYTHONPATH on PYTHONPATH; its markers kept apart.
        env = f"RSH_SERVE_CONFIG={CORPUS_CONFIG_IN_CONTAINER} PYTHONPATH=$RSH_PYTHONPATH"
        outputs = {}
        for name, command in (
            ("check", "ray-serve-haproxy check --no-ports"),
            ("serve-up", "ray-serve-haproxy serve-up --state-dir /tmp/rsh-diff-serve-up"),
        ):
            start = time.monotonic()
            code, out = self.cluster.exec_head(
                ["sh", "-c", f"mkdir -p /tmp/rsh-diff-serve-up; env {env} {command}"]
            )
            self.timings[name] = time.monotonic() - start
            outputs[name] = f"(exit {code})\n{out}"
        return outputs

    def run(
        self,
    ) -> tuple[dict[str, Observation], dict[str, str], dict[str, str], dict[str, Observation]]:
        observations: dict[str, Observation] = {}
        try:
            self.up()
            versions = self.versions()
            # Give the proxies time to settle on their no-application answers before asking.
            time.sleep(EMPTY_SETTLE_S)
            self.run_phase("empty", observations)
            self.deploy(corpus_config(with_root=False), "apps")
            self.run_phase("apps", observations)
            self.deploy(corpus_config(with_root=True), "root")
            self.run_phase("root", observations)
            outputs = self.runtime_outputs()
            with_setting = self.with_setting()
        except BaseException:
            print(self.project.logs(tail=120))
            raise
        finally:
            start = time.monotonic()
            self.project.down()
            self.timings["down"] = time.monotonic() - start
        return observations, versions, outputs, with_setting


@pytest.fixture(scope="module")
def differential(
    image: str,
    compose_project: Callable[..., ComposeProject],
    host_port: Callable[[], int],
    pb: tuple[Any, Any],
    cluster_token: ClusterToken,
) -> Iterator[dict[str, Any]]:
    """{"observations": {mode: {case: observation}}, "versions": {...}, "seconds": {...},
    "runtime": {mode: {"check": output, "serve-up": output}},
    "with_setting": {mode: {case: observation through a worker, corpus.BUFSIZE_CASES}}}."""
    result: dict[str, Any] = {
        "observations": {},
        "versions": {},
        "seconds": {},
        "runtime": {},
        "with_setting": {},
    }
    started = time.monotonic()
    for mode in MODES:
        run = ModeRun(mode, compose_project, host_port, pb, cluster_token)
        print(f"\n[diff] {mode}: project {run.project.name} ports http {run.cluster.http_port}")
        observations, versions, outputs, with_setting = run.run()
        result["observations"][mode] = observations
        result["runtime"][mode] = outputs
        result["with_setting"][mode] = with_setting
        if mode == "haproxy":
            result["versions"] = versions
        result["seconds"][mode] = {k: round(v, 1) for k, v in run.timings.items()}
        note(f"[diff] {mode} mode: " + ", ".join(f"{k} {v:.0f}s" for k, v in run.timings.items()))
        if run.reruns:
            note(f"[diff] {mode}: run again after a reload during them: {'; '.join(run.reruns)}")
    result["seconds"]["total"] = round(time.monotonic() - started, 1)
    note(f"[diff] both modes, cluster up to down: {result['seconds']['total']:.0f}s")
    # Everything observed, for a look when a case changes (not committed: .cache/).
    dump = REPO / ".cache" / "differential-last-run.json"
    dump.parent.mkdir(exist_ok=True)
    dump.write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
    yield result
