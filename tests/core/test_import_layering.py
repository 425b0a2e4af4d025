"""The cnnspec package has no import cycle, counting imports inside functions too.

Modules are read with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` anywhere in a module is an edge, except those under
``if TYPE_CHECKING:``, which never run. ``backends/`` is installed as
``cnnspec.backends`` and is walked under that name. A cycle is reported as the
chain of modules that closes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE_DIRS = {"cnnspec": ROOT / "cnnspec", "cnnspec.backends": ROOT / "backends"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Import nodes anywhere in the tree, skipping ``if TYPE_CHECKING:`` bodies."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports_of(child))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _imports(node)


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        targets |= {c for c in candidates if c in modules and c != name}
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walker_sees_function_level_imports_and_finds_cycles():
    graph = _graph()
    assert "cnnspec.spec" in graph["cnnspec.load"]  # a module-level import
    assert "cnnspec.backends" in graph["cnnspec.api"]  # imported inside a function
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_layers_sit_below_the_spec_and_the_spec_below_loading():
    graph = _graph()
    below_spec = [
        "cnnspec.errors",
        "cnnspec.registry",
        "cnnspec.issues",
        "cnnspec.fields",
        "cnnspec.shapes",
        "cnnspec.layers.base",
    ]
    for low in below_spec:
        assert not _reaches(graph, low, "cnnspec.spec"), f"{low} must not import the spec"
    assert not _reaches(graph, "cnnspec.spec", "cnnspec.load")
    assert graph["cnnspec.registry"] == set()


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return False
