"""templates_src's modules import each other in one direction: the model, then the stacks, then the
tools that use them (render, plan, compose), then the command line; and no two import each other,
not even from inside a function."""
from __future__ import annotations

import ast

from helpers import ROOT

PACKAGE = ROOT / "templates_src"
# Lowest first: a module may import its own layer or a lower one, never a higher one.
LAYERS = (("templates_src", "templates_src.app"), ("templates_src.stacks",),
          ("templates_src.render", "templates_src.plan", "templates_src.compose"), ("templates_src.__main__",))


def modules() -> dict[str, tuple[ast.Module, str]]:
    """Module name -> its syntax tree and the package its relative imports start from."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text()), ".".join(parts[:-1])
    return found


def imports(name: str, tree: ast.Module, package: str, known: set[str]) -> set[str]:
    """The templates_src modules `tree` imports anywhere in its body, functions included."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.split(".")[0] == "templates_src"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] != "templates_src":
                continue
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return out - {name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, tree, package, set(found)) for name, (tree, package) in found.items()}


def layer(module: str) -> int:
    best = max((prefix for level in LAYERS for prefix in level
                if module == prefix or module.startswith(f"{prefix}.")), key=len)
    return next(i for i, level in enumerate(LAYERS) if best in level)


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_the_graph_sees_imports_inside_functions():
    edges = graph()
    # __main__ imports plan, compose and render only when their command runs
    assert {"templates_src.plan", "templates_src.compose.command", "templates_src.render"} <= edges["templates_src.__main__"]
    assert "templates_src.app.checks" in edges["templates_src.app.loading"]


def test_no_module_imports_one_that_imports_it_back():
    found = cycle(graph())
    assert found is None, " -> ".join(found or ())


def test_no_module_imports_a_higher_layer():
    upward = [f"{name} imports {other}" for name, targets in graph().items() for other in sorted(targets)
              if layer(other) > layer(name)]
    assert not upward, upward


def test_the_checks_find_a_cycle_and_an_upward_import():
    edges = {"templates_src.app.config": {"templates_src.app.capacity"},
             "templates_src.app.capacity": {"templates_src.app.config"}}
    assert cycle(edges) == ["templates_src.app.capacity", "templates_src.app.config", "templates_src.app.capacity"]
    assert layer("templates_src.stacks.main") > layer("templates_src.app.config")
    assert layer("templates_src.compose.services") > layer("templates_src.stacks.services")
