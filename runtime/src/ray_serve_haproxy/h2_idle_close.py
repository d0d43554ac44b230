"""An HAProxy replaced by a reload closes its idle HTTP/2 connections seconds after its GOAWAY.

On every reload the old HAProxy soft-stops: it sends each HTTP/2 client a graceful GOAWAY (last
stream id 2^31-1) and waits for the client to close the connection. HAProxy as that client (the
entry, in front of every node) opens no new stream on it but keeps it open until the server side
closes it, and Ray's config closes an idle client connection only after `timeout
http-keep-alive` (90 s). So, under gRPC traffic through the entry, every old process of every
reload stays alive that long (measured: 80 s, each holding one idle connection from the entry),
and a node that stops meanwhile waits for it (25 s, then kills it).

HAProxy applies `timeout client-fin` to idle HTTP/2 connections once it has sent its GOAWAY;
this module adds it to every frontend that binds with `proto h2` (Serve's gRPC frontend), so the
old process closes them IDLE_CLOSE_S after the GOAWAY and exits. Only there: on HTTP/1
frontends `client-fin` would also bound a half-closed client waiting for a slow response.

Imported by the HAProxy launcher on every start: nothing beyond access_log.py, which the
launcher loads anyway.
"""

from __future__ import annotations

from .access_log import section_spans

IDLE_CLOSE_S = 2
TIMEOUT = f"timeout client-fin {IDLE_CLOSE_S}s"


def _binds_h2(body: list[str]) -> bool:
    for line in body:
        words = line.split()
        if words[:1] == ["bind"] and any(
            words[i : i + 2] == ["proto", "h2"] for i in range(len(words) - 1)
        ):
            return True
    return False


def _has_client_fin(body: list[str]) -> bool:
    return any(line.split()[:2] == ["timeout", "client-fin"] for line in body)


def edit(text: str) -> str:
    """`text` with TIMEOUT after the header of every HTTP/2 frontend that has no client-fin."""
    lines = text.split("\n")
    for first, end in reversed(section_spans(lines, "frontend")):
        body = lines[first + 1 : end]
        if _binds_h2(body) and not _has_client_fin(body):
            lines.insert(first + 1, f"    {TIMEOUT}")
    return "\n".join(lines)
