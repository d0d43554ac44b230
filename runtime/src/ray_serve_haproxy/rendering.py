"""The jinja2 environment every configuration file of the runtime is rendered with (templates/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2


def template_environment(**filters: Callable[..., Any]) -> jinja2.Environment:
    """Templates of this package: undefined names fail, no HTML escaping (configuration files),
    block tags leave no blank lines; `filters` are added by name."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ray_serve_haproxy", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # configuration files, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters)
    return env
