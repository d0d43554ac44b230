"""supervisord event listener: when Ray's program exits, stop supervisord (the container).

A container whose Ray died is useless but would otherwise keep running with only the syslog
receiver; stopping lets the orchestrator's restart policy bring up a clean node. A stop that
supervisord itself drives (SIGTERM) emits STOPPING/STOPPED, not EXITED, so it is not affected.

Protocol (supervisor docs, "Events"): write READY, read one header line and a payload of `len`
bytes, answer RESULT 2\\nOK. stdout belongs to the protocol; messages go to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import BinaryIO


def parse_tokens(text: str) -> dict[str, str]:
    """'a:1 b:2' -> {'a': '1', 'b': '2'}."""
    return dict(token.split(":", 1) for token in text.split() if ":" in token)


def should_stop(event: str, payload: dict[str, str], program: str) -> bool:
    return event in ("PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL") and (
        payload.get("processname") == program
    )


def listen(program: str, stdin: BinaryIO, stdout: BinaryIO, supervisord_pid: int) -> int:
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return 0  # supervisord went away
        header = parse_tokens(header_line.decode())
        payload_text = stdin.read(int(header.get("len", "0"))).decode()
        payload = parse_tokens(payload_text.splitlines()[0] if payload_text else "")
        event = header.get("eventname", "")
        if should_stop(event, payload, program):
            print(
                f"watchdog: {program} {event.removeprefix('PROCESS_STATE_').lower()} "
                f"(expected={payload.get('expected', '?')}); stopping supervisord",
                file=sys.stderr,
                flush=True,
            )
            os.kill(supervisord_pid, signal.SIGTERM)
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


def main(program: str) -> int:
    return listen(program, sys.stdin.buffer, sys.stdout.buffer, os.getppid())
