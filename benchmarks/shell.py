"""Running commands for the benchmark: on the host, and inside the project's containers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys


class BenchError(RuntimeError):
    """The benchmark cannot go on (a cluster that does not come up, a tool that failed)."""


def log(msg: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[benchmark {stamp}] {msg}", file=sys.stderr, flush=True)


def run(
    cmd: list[str],
    *,
    check: bool = True,
    timeout: float | None = 120,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        raise BenchError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )
    return proc


def dexec(
    container: str,
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    check: bool = True,
) -> str:
    """`docker exec` in one of the project's containers; its stdout."""
    args = ["docker", "exec"]
    for k, v in (env or {}).items():
        args += ["-e", f"{k}={v}"]
    return run([*args, container, *cmd], timeout=timeout, check=check).stdout
