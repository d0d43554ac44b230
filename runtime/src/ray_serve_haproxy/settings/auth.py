"""Group "Token authentication": Ray's token authentication.

Fields in the order of the group's table in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auth_token import MIN_TOKEN_LENGTH, Secret, TokenValue
from ..value_types import AbsPath, Choice
from .spec import Group, Spec, setting


@dataclass(frozen=True)
class AuthSettings:
    auth_mode: str = setting(
        Spec(
            "RAY_AUTH_MODE",
            Group.AUTH,
            Choice(
                "token",
                "disabled",
                hint="Ray itself treats every value but 'token' as disabled, silently.",
            ),
            "Ray's token authentication (Ray's variable, exported to every Ray process). "
            "`token`: the GCS, every node and the dashboard with its Jobs and Serve APIs refuse "
            "whoever lacks the cluster's token; a node without it cannot join. `disabled` "
            "turns that off: then anyone who reaches the GCS or dashboard port can run code on "
            "every node. HAProxy's client ports never ask for the token. The image sets "
            "`token`.",
            default="token",
            ray=True,
        )
    )
    auth_token_path: str = setting(
        Spec(
            "RAY_AUTH_TOKEN_PATH",
            Group.AUTH,
            AbsPath(),
            "File holding the cluster's token (a Docker or Kubernetes secret): one line, "
            f"at least {MIN_TOKEN_LENGTH} random characters, readable by its owner only "
            "(mode 600 or 400). Ray reads the file itself, so the token sits in no "
            "environment and no file the runtime writes. Checked before anything starts "
            "when the mode is `token` and `RAY_AUTH_TOKEN` is unset.",
            default="/run/secrets/ray_token",
            ray=True,
        )
    )
    # Secret is immutable like the other values (ruff cannot know it).
    auth_token: Secret | None = setting(  # noqa: RUF009
        Spec(
            "RAY_AUTH_TOKEN",
            Group.AUTH,
            TokenValue(),
            "The token itself, for platforms that hand secrets over as environment variables "
            "(KubeRay's `authOptions` does). Wins over `RAY_AUTH_TOKEN_PATH`, as in Ray. Never "
            "printed, only its length; but every process of the container, and whoever may "
            "inspect it, can read it: prefer the file.",
            unset_means="unset (the token comes from `RAY_AUTH_TOKEN_PATH`)",
            secret=True,
        )
    )
