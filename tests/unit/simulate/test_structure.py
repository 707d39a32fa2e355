"""streams.simulate's modules: each says what it holds, none imports another in a cycle, and none
uses another's private names (imported, or read as an attribute of an object of another module)."""
from __future__ import annotations

import ast
from pathlib import Path

import streams.simulate

PACKAGE = Path(streams.simulate.__file__).resolve().parent


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), filename=str(path))
            for path in sorted(PACKAGE.glob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of the package it imports (lazy and TYPE_CHECKING imports too)."""
    modules = _modules()
    graph = {}
    for name, tree in modules.items():
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:2] == ["streams", "simulate"] and len(parts) > 2:
                    deps.add(parts[2])
                elif node.module == "streams.simulate":
                    deps.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[2] for a in node.names
                            if a.name.startswith("streams.simulate."))
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle():
    graph = import_graph()
    assert graph["catalogue"] == graph["channels"] == graph["clock"] == set()
    assert cycles(graph) == []


def test_a_planted_cycle_is_found():
    graph = import_graph()
    graph["person"] = graph["person"] | {"population"}
    found = cycles(graph)
    assert found and all({"person", "population"} <= set(cycle) for cycle in found)


def test_no_private_name_is_used_across_modules():
    bad = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                bad += [f"{name} imports {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                  and not node.attr.startswith("__")
                  and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                bad.append(f"{name} reads .{node.attr}")
    assert bad == []


def test_every_module_says_what_it_holds():
    assert [name for name, tree in _modules().items() if not ast.get_docstring(tree)] == []
    listed = ast.get_docstring(_modules()["__init__"])
    assert [name for name in _modules() if name != "__init__" and f"`{name}`" not in listed] == []
