"""The access-log mode (RSH_ACCESS_LOG) and log target, applied to the config Ray generates.

Ray 2.60 renders one global logger, `log <RAY_SERVE_HAPROXY_LOG_TARGET> local0 info`, that every
frontend uses (`log global`), plus, with Serve's per-request metrics on, a second logger in
`http_frontend` that sends every request to the HAProxyManager's metrics socket at level
`debug`. Nothing in Ray's template chooses which requests reach the access log, so the runtime's
HAProxy launcher (haproxy_launcher.py) edits the file Ray wrote just before HAProxy reads it:

- all:    every request, as Ray renders it.
- errors: the access logger's level becomes `notice`, so HAProxy drops requests logged at
          `info` before sending them. `option log-separate-errors` logs abnormal requests at
          `err` (5xx, retries, redispatches, aborted or timed-out transfers whatever the
          status), and an `http-after-response` rule does the same for 4xx and for gRPC calls
          that fail in the response headers (trailers-only, grpc-status other than 0).
- off:    the access logger's level becomes `notice`: no request lines; HAProxy's own events
          (servers going UP or DOWN, alerts) are still logged.
The metrics logger keeps level `debug`, so Serve's per-request metrics see every request in
every mode.

Target `stdout` gets `format raw`: HAProxy writes each line itself to its standard output,
which the launcher points at the container's (no syslog header, no relay process).
"""

from __future__ import annotations

from enum import StrEnum


class AccessLogMode(StrEnum):
    ALL = "all"
    ERRORS = "errors"
    OFF = "off"


# First line of an edited file: the launcher never edits a file twice.
MARKER = "# ray-serve-haproxy: access log "
# The level of the access logger when only errors (or no requests) may pass: requests are
# logged at `info` (normal) or `err` (with log-separate-errors); HAProxy's events at `notice`
# (server UP, health check changes) or above (server DOWN: `alert`).
QUIET_LEVEL = "notice"
ERROR_RULE = (
    "http-after-response set-log-level err if { status 400:499 } "
    "|| { res.hdr(grpc-status) -m found } !{ res.hdr(grpc-status) -m str 0 }"
)
SEPARATE_ERRORS = "option log-separate-errors"
LOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


class TemplateChanged(ValueError):
    """Ray's config does not have the shape this module edits (another Ray version)."""


class Edited:
    """An edited config. A plain class: the launcher imports this on every HAProxy start,
    and dataclasses alone would double its start-up time."""

    __slots__ = ("changed", "target", "text")

    def __init__(self, text: str, target: str, changed: bool) -> None:
        self.text = text
        self.target = target  # the access logger's target ("stdout", "127.0.0.1:514", ...)
        self.changed = changed


def _edit_logger(line: str, mode: AccessLogMode) -> tuple[str, str]:
    """(new line, target) of `log <target> [options] <facility> <level>`."""
    indent = line[: len(line) - len(line.lstrip())]
    words = line.split()
    if len(words) < 4 or words[-1] not in LOG_LEVELS:
        raise TemplateChanged(f"global logger without facility and level: {line.strip()!r}")
    target, options, facility, level = words[1], words[2:-2], words[-2], words[-1]
    if target == "stdout" and "format" not in options:
        options = [*options, "format", "raw"]
    if mode != AccessLogMode.ALL:
        level = QUIET_LEVEL
    return f"{indent}{' '.join(['log', target, *options, facility, level])}", target


def section_keyword(line: str) -> str | None:
    """The keyword of the section a config line opens (`global`, `frontend`...), None for a line
    inside a section, a blank line or a comment."""
    if not line or line[0].isspace() or line[0] == "#":
        return None
    return line.split()[0]


def section_spans(lines: list[str], kind: str) -> list[tuple[int, int]]:
    """(header, end) line indexes of each section of `kind` (`frontend`, `backend`...): from
    its header line to the line that opens the next section, or the end."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, line in enumerate(lines):
        keyword = section_keyword(line)
        if keyword is not None:
            if start is not None:
                spans.append((start, i))
            start = i if keyword == kind else None
    if start is not None:
        spans.append((start, len(lines)))
    return spans


def _global_logger_index(lines: list[str]) -> int:
    section = ""
    for i, line in enumerate(lines):
        keyword = section_keyword(line)
        if keyword is not None:
            section = keyword
        elif section == "global" and line.split()[:1] == ["log"]:
            return i
    raise TemplateChanged("no `log` line in the global section")


def access_log_target(text: str) -> str:
    """The target of the global (access) logger of a config, edited or not."""
    return text.split("\n")[_global_logger_index(text.split("\n"))].split()[1]


def edit_config(text: str, mode: AccessLogMode) -> Edited:
    """Ray's haproxy.cfg with the access-log mode applied (see the module's docstring)."""
    if text.startswith(MARKER):
        return Edited(text, access_log_target(text), changed=False)
    lines = text.split("\n")
    logger = _global_logger_index(lines)
    lines[logger], target = _edit_logger(lines[logger], mode)
    out = [f"{MARKER}{mode.value}"]
    defaults = frontends = 0
    for line in lines:
        out.append(line)
        section = section_keyword(line) if mode == AccessLogMode.ERRORS else None
        if section == "defaults":
            out.append(f"    {SEPARATE_ERRORS}")
            defaults += 1
        elif section == "frontend":
            out.append(f"    {ERROR_RULE}")
            frontends += 1
    if mode == AccessLogMode.ERRORS and not (defaults and frontends):
        raise TemplateChanged("no defaults section or no frontend to add the error rules to")
    return Edited("\n".join(out), target, changed=True)
