"""druid.config has no import cycle and no function-local imports between its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import druid.config

PACKAGE = Path(druid.config.__file__).parent


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """(modules of druid.config this one imports, those imported inside a function)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    local: list[str] = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inside = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "druid.config":
                names = [f"druid.config.{a.name}" for a in node.names]
            elif node.module.startswith("druid.config."):
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("druid.config.")]
        found.update(n.removeprefix("druid.config.") for n in names)
        if names and id(node) in inside:
            local += names
    return found, local


def test_config_modules_form_layers() -> None:
    graph = {}
    for path in PACKAGE.glob("*.py"):
        if path.name == "__init__.py":
            continue
        deps, local = _imports(path)
        assert not local, f"{path.name} imports {local} inside a function"
        graph[path.stem] = deps & {p.stem for p in PACKAGE.glob("*.py")}
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {m for m, deps in graph.items() if m not in done and deps <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready
