"""Helpers every command of `ray-serve-haproxy` shares: loading settings, failing, the role."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from .settings_loader import EffectiveSettings, InvalidSettings, Role, load_settings

EXIT_INVALID_SETTINGS = 2


def _fail(message: str, code: int = 1) -> int:
    print(f"ray-serve-haproxy: {message}", file=sys.stderr)
    return code


def _load(
    role: Role | None, *, check_token: bool = True, environ: Mapping[str, str] | None = None
) -> EffectiveSettings | None:
    """Effective settings, or None after printing every error (callers exit 2)."""
    try:
        return load_settings(environ, role=role, check_token=check_token)
    except InvalidSettings as exc:
        print(exc.report(), file=sys.stderr)
        return None


def _recorded_role() -> Role | None:
    """The role `head` / `worker` wrote into RSH_STATE_DIR/role (None if none was)."""
    from .settings import spec_by_env
    from .state_dir import read_role

    # Only the state dir is needed; the rest of the settings need not be valid for this.
    _, spec = spec_by_env()["RSH_STATE_DIR"]
    return read_role(os.environ.get(spec.env, "").strip() or str(spec.default))


def _role_arg(text: str | None) -> Role | None:
    return Role(text) if text else None
