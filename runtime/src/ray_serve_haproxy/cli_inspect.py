"""Read-only operator commands: `status` (HAProxy's admin sockets, Serve's applications, the
HAProxy patch level) and `sbom` / `sbom-generate` (the image's bill of materials)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import haproxy_patch_level
from .cli_common import EXIT_INVALID_SETTINGS, _fail, _load, _recorded_role
from .settings_loader import Role


def cmd_status(args: argparse.Namespace) -> int:
    from .haproxy_stats import collect, find_sockets, render_status, status_json

    # Reads HAProxy's admin socket only: no token needed (on the head, Serve's applications
    # are asked from the dashboard with the token when there is one).
    effective = _load(None, check_token=False)
    if effective is None:
        return EXIT_INVALID_SETTINGS
    from .serve_apps import head_view

    role = _recorded_role()
    serve = head_view(effective.values) if role == Role.HEAD and not args.socket else None
    socket_path = effective.values.socket_path
    if not args.socket and role == Role.ENTRY:
        from .entry import socket_path as entry_socket

        socket_path = str(entry_socket(effective.values.state_dir))
    paths = [args.socket] if args.socket else find_sockets(socket_path)
    statuses = collect(socket_path, paths) if paths else []
    level, level_error = _patch_level()
    if args.json:
        data = status_json(statuses)
        data["haproxy_security"] = (
            haproxy_patch_level.status_json(level) if not level_error else {"error": level_error}
        )
        if serve is not None:
            data["serve"] = serve.as_json()
        print(json.dumps(data, indent=2))
    else:
        lines = [level_error] if level_error else haproxy_patch_level.status_lines(level)
        sys.stdout.write("\n".join(lines) + "\n\n")
        if serve is not None:
            sys.stdout.write(serve.render())
        sys.stdout.write(render_status(statuses))
    if not paths:
        directory, name = os.path.split(socket_path)
        return _fail(
            f"no HAProxy admin socket at {socket_path} or {directory}/*/{name}: "
            "is Serve running in HAProxy mode on this node?"
        )
    if all(s.error for s in statuses):
        return _fail("no HAProxy answered on its admin socket")
    return 0


def _patch_level() -> tuple[haproxy_patch_level.PatchLevel | None, str]:
    """The image's HAProxy patch level, or why it cannot be read."""
    try:
        return haproxy_patch_level.load(), ""
    except haproxy_patch_level.PatchLevelError as exc:
        return None, f"HAProxy patch level: unreadable build record: {exc}"


def cmd_sbom(args: argparse.Namespace) -> int:
    from .bill_of_materials import SBOM_PATH, summary_rows
    from .table import render_table

    path = Path(args.path or SBOM_PATH)
    try:
        text = path.read_text()
        document = json.loads(text)
    except (OSError, ValueError) as exc:
        return _fail(f"no readable bill of materials at {path}: {exc}")
    if args.summary:
        print(render_table(["KIND", "NAME", "VERSION", "SHA-256"], summary_rows(document)))
    else:
        sys.stdout.write(text)
    return 0


# --- internal programs (run by supervisord, or by the image build) ----------------------------


def cmd_sbom_generate(args: argparse.Namespace) -> int:
    from . import __version__
    from .bill_of_materials import (
        SBOM_PATH,
        BillOfMaterialsError,
        GenerateInputs,
        ImageFacts,
        generate,
    )

    image = ImageFacts(
        name=args.image_name,
        version=args.image_version,
        base_image=args.base_image,
        platform=args.platform,
        tool_version=__version__,
    )
    inputs = GenerateInputs(
        output=Path(args.output or SBOM_PATH),
        image=image,
        pip_reports=[Path(p) for p in args.pip_report],
        wheel_dirs=[Path(d) for d in args.wheel_dir],
        haproxy=Path(args.haproxy),
        haproxy_source_sha256=Path(args.haproxy_source_sha256),
        haproxy_security=Path(args.haproxy_security) if args.haproxy_security else None,
    )
    try:
        document = generate(inputs)
    except BillOfMaterialsError as exc:
        return _fail(f"bill of materials: {exc}")
    counts: dict[str, int] = {}
    for component in document["components"]:
        kind = str(component["bom-ref"]).split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    print(f"wrote {inputs.output}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0
