"""No import circle among the modules of the runtime and the benchmark: arrows only downward.

Reads every `import` (lazy ones inside functions too) with `ast`, resolves the relative and
absolute ones that name our own modules, and looks for a cycle in that graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
# (directory holding the top-level package, package name)
PACKAGES = ((REPO / "runtime" / "src", "ray_serve_haproxy"), (REPO, "benchmarks"))


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` under `root`."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules in `known` that the module `name` imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from x import y`: y is a submodule of x, or a name defined in x.
            candidates = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for candidate in candidates:
            # `import a.b.c` also runs a and a.b; the deepest known module is the edge.
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a, b, ..., a) in `graph`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph(packages: tuple[tuple[Path, str], ...]) -> dict[str, set[str]]:
    files: dict[str, Path] = {}
    for root, package in packages:
        files.update(module_files(root, package))
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def test_no_import_circle_in_runtime_and_benchmarks() -> None:
    graph = import_graph(PACKAGES)
    assert len(graph) > 60, f"only {len(graph)} modules found: is PACKAGES right?"
    assert sum(len(edges) for edges in graph.values()) > 100, "too few imports resolved"
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_check_finds_a_circle_through_a_lazy_relative_import(tmp_path: Path) -> None:
    """The shape benchmarks had (load -> wrk at call time, wrk -> load at import)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "load.py").write_text("def run():\n    from .sub.wrk import wrk\n")
    (pkg / "sub" / "wrk.py").write_text("from ..load import run\n")
    (pkg / "shared.py").write_text("")
    (pkg / "h2.py").write_text("from pkg import shared\nimport pkg.load\n")
    graph = import_graph(((tmp_path, "pkg"),))
    assert graph["pkg.h2"] == {"pkg.shared", "pkg.load"}, graph
    assert find_cycle(graph) == ["pkg.load", "pkg.sub.wrk", "pkg.load"]
    (pkg / "sub" / "wrk.py").write_text("from .. import shared\n")
    graph = import_graph(((tmp_path, "pkg"),))
    assert graph["pkg.sub.wrk"] == {"pkg.shared"}, graph
    assert find_cycle(graph) is None
