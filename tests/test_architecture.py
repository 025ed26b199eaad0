"""capeval's layers stay acyclic: no module imports, at module level or inside a function, a module
that imports it back. Also: capeval never imports capeval_models or torch, and no ``noqa: E402``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "capeval"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def is_package(name: str, known: dict[str, Path]) -> bool:
    return known[name].name == "__init__.py"


def import_edges(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules ``name`` imports anywhere in its source (module level and inside functions)."""
    package = name if is_package(name, known) else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from . import x` imports the submodule x when there is one
                sub = f"{source}.{alias.name}"
                targets.add(sub if sub in known else source)
    edges = set()
    for target in targets:
        if target not in known:
            continue
        edges.add(target)
        # importing a.b.c runs the subpackages' __init__ first (not the root package's: it is the one
        # being imported, and not a package the importer itself lives in)
        parts = target.split(".")
        for k in range(2, len(parts)):
            parent = ".".join(parts[:k])
            if parent in known and not name.startswith(parent + ".") and name != parent:
                edges.add(parent)
    edges.discard(name)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def capeval_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: import_edges(name, path, known) for name, path in known.items()}


def test_capeval_imports_are_acyclic():
    cycle = find_cycle(capeval_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_function_level_imports(tmp_path):
    """The checker itself: a cycle closed only by an import inside a function is found."""
    known = {"capeval.a": tmp_path / "a.py", "capeval.b": tmp_path / "b.py", "capeval": tmp_path / "__init__.py"}
    known["capeval.a"].write_text("from .b import f\n")
    known["capeval.b"].write_text("def f():\n    from .a import g\n    return g\n")
    known["capeval"].write_text("")
    graph = {name: import_edges(name, path, known) for name, path in known.items()}
    assert graph["capeval.b"] == {"capeval.a"}
    assert find_cycle(graph) == ["capeval.a", "capeval.b", "capeval.a"]


def test_the_root_package_is_imported_by_nobody_below_it():
    graph = capeval_graph()
    importers = sorted(name for name, edges in graph.items() if "capeval" in edges)
    assert importers == [], f"these modules import the capeval package itself (use capeval._version etc.): {importers}"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_late_imports_and_no_models_or_torch(path):
    text = path.read_text(encoding="utf-8")
    assert "noqa: E402" not in text
    tree = ast.parse(text)
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        for name in names:
            assert name.split(".")[0] not in ("torch", "capeval_models"), f"{path.name} imports {name}"
