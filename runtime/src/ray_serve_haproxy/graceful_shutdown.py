"""Which deployments of a Serve config stop their replicas before a long request can finish.

When Serve scales a deployment down (or redeploys it), it stops replicas: a stopped replica
finishes the requests it holds, but Serve's controller kills it `graceful_shutdown_timeout_s`
after the stop began (Serve's default 20 s; Ray 2.60 waits at least
RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S, 30 s, for an ingress replica in HAProxy mode).
A request still running then is cut: the node's HAProxy closes the client connection without an
answer. The settings let a request run as long as RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S (unset: any
length), so a deployment that gives its replicas less than that cannot carry the longest
requests through a scale-down. Pure logic on the config `serve deploy` takes; options set only
in the application's code are not seen (Serve's default is assumed, and said).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Serve's default (ray/serve/_private/constants.py DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_S).
DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_S = 20.0
TIMEOUT_SERVER_ENV = "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"


@dataclass(frozen=True)
class ShortShutdown:
    """A deployment whose replicas may be killed while a request the settings allow runs."""

    app: str
    deployment: str
    graceful_shutdown_timeout_s: float
    assumed: bool  # the config does not set it: Serve's default (or the code's own) applies
    timeout_server_s: int | None

    @property
    def label(self) -> str:
        return f"{self.app}/{self.deployment}"

    @property
    def said(self) -> str:
        if self.assumed:
            return (
                f"graceful_shutdown_timeout_s not set in the config (Serve's default "
                f"{self.graceful_shutdown_timeout_s:g} s, unless its code sets one)"
            )
        return f"graceful_shutdown_timeout_s {self.graceful_shutdown_timeout_s:g}"

    def __str__(self) -> str:
        return (
            f"application {self.app!r}, deployment {self.deployment}: {self.said}, but "
            f"{TIMEOUT_SERVER_ENV}={self.timeout_server_s} lets a request run "
            f"{self.timeout_server_s} s. {CONSEQUENCE}"
        )


CONSEQUENCE = (
    "A request still running when Serve stops its replica (a scale-down, a redeploy) is cut "
    "after that time and the client gets no answer; set graceful_shutdown_timeout_s to at "
    "least the longest request"
)


def unbounded_text(found: list[ShortShutdown]) -> str:
    """One line for every deployment when the settings allow requests of any length."""
    listed = "; ".join(f"application {s.app!r}, deployment {s.deployment}: {s.said}" for s in found)
    return f"{TIMEOUT_SERVER_ENV} is unset (a request may run any length): {listed}. {CONSEQUENCE}"


def _timeout_of(options: Mapping[str, Any]) -> tuple[float, bool] | None:
    """(graceful_shutdown_timeout_s, assumed); None when the value is not a number."""
    value = options.get("graceful_shutdown_timeout_s")
    if value is None:
        return DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_S, True
    try:
        return float(value), False
    except (TypeError, ValueError):
        return None


def short_shutdowns(config: Mapping[str, Any], timeout_server_s: int | None) -> list[ShortShutdown]:
    """Every deployment listed in `config` whose graceful shutdown is shorter than the longest
    request `timeout_server_s` allows (None: no limit, so every one)."""
    found: list[ShortShutdown] = []
    for app in config.get("applications") or []:
        if not isinstance(app, Mapping):
            continue
        app_name = str(app.get("name", "default"))
        for options in app.get("deployments") or []:
            if not isinstance(options, Mapping):
                continue
            timeout = _timeout_of(options)
            if timeout is None:
                continue
            seconds, assumed = timeout
            if timeout_server_s is None or seconds < timeout_server_s:
                found.append(
                    ShortShutdown(
                        app_name, str(options.get("name", "?")), seconds, assumed, timeout_server_s
                    )
                )
    return found
