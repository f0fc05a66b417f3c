"""The package's import graph: no module imports itself through others, whether the import sits at the top of a
file or inside a function (only `if TYPE_CHECKING:` imports, which never run, are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asr"


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            return True
    return False


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in modules:
                found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names} & modules  # from asr import x
    return found - {"asr"}


def module_name(path: Path) -> str:
    """asr/synthesis/degrade.py -> asr.synthesis.degrade."""
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def import_graph() -> dict[str, set[str]]:
    """Every module of the package and its subpackages (asr.synthesis), without the `__init__` files."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py") if path.stem != "__init__"}
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert graph["asr.recognizer"] >= {"asr.transcribe", "asr.decoders"}  # the graph sees real imports
    assert graph["asr.synthesis.engines"] >= {"asr.synthesis.neural", "asr.synthesis.degrade"}  # and subpackages
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
