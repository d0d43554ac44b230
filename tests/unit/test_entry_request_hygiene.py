"""The entry's request-hygiene rules: one contiguous block at the top of each client frontend,
refusing what the HAProxy fixes a below-floor build lacks would refuse. (What a real HAProxy
answers to such requests: tests/image/test_entry_request_hygiene.py.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ray_serve_haproxy.entry import render_haproxy_config
from ray_serve_haproxy.settings_loader import EffectiveSettings, Role

pytestmark = pytest.mark.unit

Load = Callable[..., EffectiveSettings]
NODES = {"RSH_ENTRY_NODES": "head,worker"}
BEGIN = "# --- Request hygiene"
END = "# --- end of request hygiene"
AUTHORITY_RULES = [
    "http-request deny deny_status 400 if { req.hdr_cnt(host) gt 1 }",
    "http-request deny deny_status 400 if { req.fhdr(host) -m reg [,[:space:]] }",
    "http-request deny deny_status 400 if { url -m reg ^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*, }",
]
HTTP1_RULES = [
    "http-request deny deny_status 400 if { req.ver 1.1 } !{ req.fhdr(host) -m found }",
    "http-request deny deny_status 400 if { req.fhdr(transfer-encoding) -m found }"
    " !{ req.ver 1.1 }",
    "http-request del-header upgrade if { req.hdr(upgrade) -m str -i h2c }",
    "http-request del-header http2-settings",
]


def frontend(config: str, name: str) -> list[str]:
    """The lines of `frontend NAME`, comments kept, stripped."""
    lines = config.splitlines()
    start = lines.index(f"frontend {name}")
    out = []
    for raw in lines[start + 1 :]:
        if raw and not raw[0].isspace():
            break
        out.append(raw.strip())
    return [line for line in out if line]


def hygiene_block(lines: list[str]) -> list[str]:
    """The rules between the block's markers, which must be contiguous and come right after
    `bind`: before any other http-request rule, so that nothing acts on a refused request."""
    begin = next(i for i, line in enumerate(lines) if line.startswith(BEGIN))
    end = next(i for i, line in enumerate(lines) if line.startswith(END))
    assert lines[begin - 1].startswith("bind "), lines
    assert not any(line.startswith("http-request") for line in lines[:begin]), lines
    return [line for line in lines[begin + 1 : end] if not line.startswith("#")]


def test_http_frontend_refuses_bad_authorities_and_transfer_encodings(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, **NODES).values)
    assert hygiene_block(frontend(config, "http")) == AUTHORITY_RULES + HTTP1_RULES


def test_grpc_frontend_refuses_bad_authorities(load: Load) -> None:
    # gRPC is HTTP/2 only: no Transfer-Encoding, no HTTP/1 Host rule, no upgrades.
    config = render_haproxy_config(load(Role.ENTRY, **NODES).values)
    assert hygiene_block(frontend(config, "grpc")) == AUTHORITY_RULES


def test_each_frontend_has_exactly_one_block(load: Load) -> None:
    config = render_haproxy_config(load(Role.ENTRY, **NODES).values)
    assert config.count(BEGIN) == 2 and config.count(END) == 2
    without_grpc = render_haproxy_config(load(Role.ENTRY, **NODES, RSH_GRPC_PORT="0").values)
    assert without_grpc.count(BEGIN) == 1
    assert "deny" not in "\n".join(frontend(config, "metrics"))


def test_block_names_what_it_stands_in_for(load: Load) -> None:
    comments = "\n".join(
        line
        for line in frontend(render_haproxy_config(load(Role.ENTRY, **NODES).values), "http")
        if line.startswith("#")
    )
    assert 'BUG/MAJOR "http: forbid comma character in authority value"' in comments
    assert "docs/haproxy-patch-level.md" in comments
