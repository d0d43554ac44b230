"""RSH_ACCESS_LOG end to end in the image: Ray's own renderer writes the config, the runtime's
launcher (rsh-haproxy) applies the mode and execs the image's HAProxy, which serves real HTTP
from a stand-in replica (python's http.server) and writes its access log to the file handed to
it as the container's stdout. Serve's per-request metrics datagrams are counted on a socket
bound where Ray's HAProxyManager would bind it."""

from __future__ import annotations

import json
import textwrap

import pytest

from .conftest import ImageRunner

pytestmark = pytest.mark.image

SCRIPT = textwrap.dedent(
    """
    import json, os, socket, subprocess, sys, time, urllib.error, urllib.request
    from ray.serve._private.haproxy import (
        BackendConfig, HAProxyApi, HAProxyConfig, ServerConfig)

    www = "/tmp/www"
    for path, body in (("app/ok", "ok"), ("-/healthz", "success")):
        os.makedirs(os.path.dirname(f"{www}/{path}"), exist_ok=True)
        open(f"{www}/{path}", "w").write(body)
    replica = subprocess.Popen(
        [sys.executable, "-m", "http.server", "18080", "--bind", "127.0.0.1", "-d", www],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    REQUESTS = ["/app/ok"] * 3 + ["/nothere", "/nothere", "/app/missing"]

    def get(path):
        # Read every response to its end: a client that hangs up before HAProxy has sent it
        # all is an abnormal termination (CD), which `errors` logs whatever the status.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:8000{path}", timeout=5) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as exc:
            exc.read()
            exc.close()
            return exc.code

    report = {}
    for mode in ("all", "errors", "off"):
        d = f"/tmp/hap-{mode}"
        os.makedirs(d)
        cfg = HAProxyConfig(
            socket_path=f"{d}/admin.sock", server_state_base=d,
            server_state_file=f"{d}/server-state", metrics_socket_path=f"{d}/metrics.sock",
            log_target="stdout", metrics_enabled=True, nbthread=1)
        api = HAProxyApi(cfg=cfg, config_file_path=f"{d}/haproxy.cfg")
        api.set_backend_configs({"app": BackendConfig(
            name="app", path_prefix="/app", app_name="app",
            servers=[ServerConfig(name="r1", host="127.0.0.1", port=18080)])})
        api._generate_config_file_internal()
        metrics = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        metrics.bind(f"{d}/metrics.sock")
        metrics.settimeout(0.5)
        stdout = f"{d}/container-stdout"
        open(stdout, "w").close()
        env = dict(os.environ, RSH_HAPROXY_BINARY="/usr/local/bin/haproxy",
                   RSH_ACCESS_LOG=mode, RSH_CONTAINER_STDOUT=stdout)
        haproxy = subprocess.Popen(["rsh-haproxy", "-db", "-f", f"{d}/haproxy.cfg"], env=env,
                                   stderr=open(f"{d}/stderr", "w"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", 8000), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        def drain():
            n = 0
            try:
                while True:
                    metrics.recv(65535)
                    n += 1
            except socket.timeout:
                return n

        # The readiness probe's connection, closed before sending a request, is an abnormal
        # termination (CR): kept apart from the requests' lines.
        time.sleep(0.5)
        drain()
        offset = os.path.getsize(stdout)
        statuses = [get(p) for p in REQUESTS]
        time.sleep(0.5)
        datagrams = drain()
        haproxy.terminate()
        haproxy.wait(10)
        metrics.close()
        with open(stdout) as out:
            probe = out.read(offset)
            lines = [l for l in out.read().splitlines() if "http_frontend" in l]
        report[mode] = {
            "statuses": statuses,
            "lines": lines,
            "probe_lines": [l for l in probe.splitlines() if "http_frontend" in l],
            "metrics_datagrams": datagrams,
            "config_head": open(f"{d}/haproxy.cfg").read().splitlines()[:8],
            "stderr": open(f"{d}/stderr").read()[-1500:],
        }
    replica.terminate()
    print("REPORT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report(image_runner: ImageRunner) -> dict[str, dict[str, object]]:
    result = image_runner.run(["-c", SCRIPT], entrypoint=["python"], timeout_s=180)
    assert result.exit_code == 0, result.output[-4000:]
    line = next(ln for ln in result.output.splitlines() if ln.startswith("REPORT "))
    data: dict[str, dict[str, object]] = json.loads(line[len("REPORT ") :])
    return data


def _lines_with_status(lines: object, status: int) -> list[str]:
    assert isinstance(lines, list)
    return [ln for ln in lines if f" {status} " in ln]


@pytest.mark.parametrize("mode", ["all", "errors", "off"])
def test_every_mode_serves_the_same(report: dict[str, dict[str, object]], mode: str) -> None:
    assert report[mode]["statuses"] == [200, 200, 200, 404, 404, 404], report[mode]["stderr"]
    # Serve's per-request metrics see every request whatever the access log keeps.
    assert report[mode]["metrics_datagrams"] == 6, report[mode]


def test_all_logs_every_request_in_raw_format(report: dict[str, dict[str, object]]) -> None:
    lines = report["all"]["lines"]
    print(f"\n[image] access log `all`: {lines}")
    assert len(_lines_with_status(lines, 200)) == 3, lines
    assert len(_lines_with_status(lines, 404)) == 3, lines
    assert isinstance(lines, list) and not lines[0].startswith("<")  # no syslog header


def test_errors_logs_only_the_failed_requests(report: dict[str, dict[str, object]]) -> None:
    lines = report["errors"]["lines"]
    print(f"\n[image] access log `errors`: {lines}")
    assert _lines_with_status(lines, 200) == [], lines
    # The two routed nowhere (HAProxy's own 404) and the one the replica answered 404.
    assert len(_lines_with_status(lines, 404)) == 3, lines
    assert any("app/r1" in ln for ln in _lines_with_status(lines, 404)), lines


def test_errors_logs_abnormal_terminations(report: dict[str, dict[str, object]]) -> None:
    # The readiness probe: a connection closed by the client before any request.
    for mode in ("all", "errors"):
        probe = report[mode]["probe_lines"]
        assert isinstance(probe, list) and len(probe) == 1 and " CR-- " in probe[0], probe
    assert report["off"]["probe_lines"] == []


def test_off_logs_no_request(report: dict[str, dict[str, object]]) -> None:
    assert report["off"]["lines"] == [], report["off"]
    head = report["off"]["config_head"]
    assert isinstance(head, list) and head[0] == "# ray-serve-haproxy: access log off"
