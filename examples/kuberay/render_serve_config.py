#!/usr/bin/env python3
"""Render the RayService's serveConfigV2 from the compose demo's Serve config.

The RayService in rayservice.yaml must deploy exactly what `docker compose up` deploys
(examples/demo/serve_config.yaml). This script copies that config into the manifest's
`serveConfigV2: |` block, adding only what KubeRay needs: Serve's HTTP server on
0.0.0.0:8000, so that HAProxy on every pod is reachable through the pod's IP.

    python3 examples/kuberay/render_serve_config.py          # rewrite rayservice.yaml
    python3 examples/kuberay/render_serve_config.py --check  # exit 1 if it is stale

tests/kuberay/test_manifests.py runs the check, so a hand edit of the block fails a test.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEMO_CONFIG = REPO / "examples" / "demo" / "serve_config.yaml"
RAYSERVICE = HERE / "rayservice.yaml"

KEY_LINE = "  serveConfigV2: |"
BLOCK_INDENT = "    "
HTTP_HOST = "0.0.0.0"
HTTP_PORT = 8000


def serve_config_v2(demo: dict[str, Any]) -> dict[str, Any]:
    """The demo config with Serve's HTTP server bound to all interfaces on HTTP_PORT."""
    config = dict(demo)
    http_options = dict(config.get("http_options") or {})
    http_options["host"] = HTTP_HOST
    http_options.setdefault("port", HTTP_PORT)
    # http_options first: it is what differs from the demo, so a reader sees it at once.
    return {
        "http_options": http_options,
        **{k: v for k, v in config.items() if k != "http_options"},
    }


def render_block(demo_text: str) -> str:
    """The indented body of the serveConfigV2 literal block."""
    demo = yaml.safe_load(demo_text)
    if not isinstance(demo, dict) or not demo.get("applications"):
        raise ValueError(f"{DEMO_CONFIG}: expected a Serve config with 'applications'")
    body = yaml.safe_dump(serve_config_v2(demo), sort_keys=False, default_flow_style=False)
    return "".join(
        f"{BLOCK_INDENT}{line}" if line.strip() else "\n" for line in body.splitlines(True)
    )


def render(manifest_text: str, demo_text: str) -> str:
    """manifest_text with its serveConfigV2 block replaced by the rendered one."""
    lines = manifest_text.splitlines(True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == KEY_LINE]
    if len(starts) != 1:
        raise ValueError(f"expected exactly one line {KEY_LINE!r} in the RayService manifest")
    start = starts[0] + 1
    end = start
    # The block runs until the first non-blank line indented less than its body.
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(BLOCK_INDENT)):
        end += 1
    # Keep blank lines that separate the block from what follows outside it.
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "".join([*lines[:start], render_block(demo_text), *lines[end:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report a stale manifest, change nothing"
    )
    args = parser.parse_args(argv)
    current = RAYSERVICE.read_text()
    wanted = render(current, DEMO_CONFIG.read_text())
    if current == wanted:
        print(f"{RAYSERVICE.relative_to(REPO)}: serveConfigV2 is up to date")
        return 0
    if args.check:
        diff = difflib.unified_diff(
            current.splitlines(True),
            wanted.splitlines(True),
            str(RAYSERVICE.relative_to(REPO)),
            "rendered",
        )
        sys.stdout.writelines(diff)
        print(f"{RAYSERVICE.relative_to(REPO)}: serveConfigV2 is stale; run {Path(__file__).name}")
        return 1
    RAYSERVICE.write_text(wanted)
    source = DEMO_CONFIG.relative_to(REPO)
    print(f"{RAYSERVICE.relative_to(REPO)}: serveConfigV2 rendered from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
