"""The import rules of docs/architecture.md: the engine at the bottom, ops on it, and no
module reaching into another's private names."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minigrad"
MODULES = sorted(PACKAGE.rglob("*.py"))


def runtime_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for each `from minigrad... import name` that runs (not TYPE_CHECKING's)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and id(node) not in typing_only
        if node.module and node.module.split(".")[0] == "minigrad"
        for alias in node.names
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_module_s_private_names(path):
    private = [f"{m}.{n}" for m, n in runtime_imports(path) if n.startswith("_")]
    assert private == []


def test_the_engine_imports_nothing_from_minigrad_and_ops_only_the_engine():
    assert runtime_imports(PACKAGE / "engine.py") == []
    assert {m for m, _ in runtime_imports(PACKAGE / "ops.py")} == {"minigrad.engine"}


def test_the_checks_see_imports():
    # The rules above pass for a module with no imports at all; this one has both kinds.
    imports = runtime_imports(PACKAGE / "viz" / "graph.py")
    assert ("minigrad.ops", "Op") in imports
    assert ("minigrad.nn", "Module") not in imports  # imported for type hints only
