"""Which applications of a Serve config rely on something HAProxy mode drops.

Reads the application code without importing it (user code may need GPUs, secrets or
packages the head lacks, and importing runs it): each application's module is found on
RSH_PYTHONPATH (or a local runtime_env working_dir), parsed with `ast`, and its ingress
deployment - the class whose `.bind()` the import path names - is looked at.

What HAProxy mode drops, found by the differential test (docs/switching/differences.md):
- model multiplexing on the ingress: HAProxy balances with leastconn and ignores the
  `serve_multiplexed_model_id` header (ray-project/ray#65976), so requests for one model
  spread over every replica, each of which loads it. Multiplexed deployments behind the
  ingress are fine: deployment handles route by model id in both modes.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MULTIPLEXING_ISSUE = "ray-project/ray#65976"


@dataclass(frozen=True)
class Reliance:
    """An application that relies on a feature HAProxy mode drops."""

    app: str
    deployment: str
    location: str  # file:line
    feature: str
    consequence: str

    def __str__(self) -> str:
        return (
            f"application {self.app!r} relies on {self.feature} in deployment "
            f"{self.deployment} ({self.location}): {self.consequence}"
        )


@dataclass(frozen=True)
class ScanResult:
    reliances: list[Reliance]
    not_inspected: list[str]  # "app: why"


def split_import_path(import_path: str) -> tuple[str, str]:
    """'pkg.mod:attr' or 'pkg.mod.attr' -> ('pkg.mod', 'attr')."""
    if ":" in import_path:
        module, _, attr = import_path.partition(":")
    else:
        module, _, attr = import_path.rpartition(".")
    return module, attr


def find_module(module: str, search_path: Sequence[str]) -> Path | None:
    """The source file of `module` under one of the directories, or None."""
    relative = Path(*module.split("."))
    for directory in search_path:
        for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
            path = Path(directory) / candidate
            if path.is_file():
                return path
    return None


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return ""


def _bound_class(value: ast.expr) -> str | None:
    """`Cls.bind(...)` or `Cls.options(...).bind(...)` -> 'Cls'."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return None
    if value.func.attr != "bind":
        return None
    receiver = value.func.value
    while isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute):
        receiver = receiver.func.value  # .options(...)
    return receiver.id if isinstance(receiver, ast.Name) else None


def ingress_class(tree: ast.Module, attr: str) -> str | None:
    """The class whose `.bind()` is assigned to `attr` at module level."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == attr for t in node.targets
        ):
            return _bound_class(node.value)
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == attr
            and node.value is not None
        ):
            return _bound_class(node.value)
    return None


def multiplexed_methods(cls: ast.ClassDef) -> Iterator[tuple[str, int]]:
    """(method name, line of its @serve.multiplexed) of every multiplexed method."""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in item.decorator_list:
                if _decorator_name(decorator) == "multiplexed":
                    yield item.name, decorator.lineno


def scan_app(app: dict[str, Any], search_path: Sequence[str]) -> tuple[list[Reliance], str | None]:
    """(reliances, why it was not inspected or None) for one application entry."""
    name = str(app.get("name", "default"))
    import_path = str(app.get("import_path") or "")
    module, attr = split_import_path(import_path)
    if not module or not attr:
        return [], f"{name}: import_path {import_path!r} not understood"
    paths = list(search_path)
    working_dir = (app.get("runtime_env") or {}).get("working_dir")
    if isinstance(working_dir, str) and os.path.isdir(working_dir):
        paths.insert(0, working_dir)
    source = find_module(module, paths)
    if source is None:
        where = ", ".join(paths) or "an empty RSH_PYTHONPATH"
        return [], f"{name}: module {module} not found in {where}"
    try:
        tree = ast.parse(source.read_text(), filename=str(source))
    except (OSError, SyntaxError, ValueError) as exc:
        return [], f"{name}: {source} cannot be parsed ({exc})"
    ingress = ingress_class(tree, attr)
    if ingress is None:
        return [], f"{name}: no `{attr} = <Deployment>.bind(...)` in {source}"
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if ingress not in classes:
        return [], f"{name}: ingress {ingress} is not defined in {source}"
    reliances = [
        Reliance(
            app=name,
            deployment=ingress,
            location=f"{source.name}:{line}",
            feature=f"model multiplexing on the ingress (@serve.multiplexed {method})",
            consequence=(
                "HAProxy mode ignores the serve_multiplexed_model_id header "
                f"({MULTIPLEXING_ISSUE}): requests for one model spread over every replica, "
                "each loading it; put the multiplexed models behind the ingress and call them "
                "with handle.options(multiplexed_model_id=...)"
            ),
        )
        for method, line in multiplexed_methods(classes[ingress])
    ]
    return reliances, None


def scan_config(config: dict[str, Any], search_path: Sequence[str]) -> ScanResult:
    reliances: list[Reliance] = []
    not_inspected: list[str] = []
    for app in config.get("applications") or []:
        if not isinstance(app, dict):
            continue
        found, why_not = scan_app(app, search_path)
        reliances += found
        if why_not:
            not_inspected.append(why_not)
    return ScanResult(reliances, not_inspected)


def search_path_of(pythonpath: str | None) -> list[str]:
    return [p for p in (pythonpath or "").split(os.pathsep) if p]


def read_serve_config(path: str) -> dict[str, Any]:
    """A Serve config file as a dict; ValueError with the reason when it is not one."""
    import importlib

    yaml = importlib.import_module("yaml")  # PyYAML comes with Ray (and the dev venv)
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a Serve config (not a mapping)")
    return config


def startup_warnings(config: dict[str, Any], pythonpath: str | None) -> list[str]:
    """Lines for the head's start-up log: every application relying on a dropped feature."""
    result = scan_config(config, search_path_of(pythonpath))
    lines = [f"WARNING: {r}" for r in result.reliances]
    lines += [f"not inspected for HAProxy mode: {why}" for why in result.not_inspected]
    return lines
