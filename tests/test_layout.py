"""The package's layout: stages that import one way, no circles, no module over 400 lines.

The stages, lowest first. A module may import from its own stage and from lower ones; review, report
and exchange are peers that do not import each other. Imports inside functions count too; imports
made only for type annotations (under ``if TYPE_CHECKING:``) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "opm_nlp"
STAGES = [
    ("exceptions", "columns"),
    ("io",),
    ("codebook",),
    ("embedding",),
    ("classify",),
    ("model",),
    ("review", "report", "exchange"),
    ("cli",),
]
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return len(STAGES), "opm_nlp"  # the public API resolves lazily at the top
    for rank, names in enumerate(STAGES):
        if parts[1] in names:
            return rank, parts[1]
    raise AssertionError(f"{module} belongs to no stage; add it to STAGES in {Path(__file__).name}")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, modules: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name.startswith("opm_nlp"))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.split(".")
                    base = ".".join(package[:len(package) - child.level + (module in packages)] + ([base] if base else []))
                if base.startswith("opm_nlp"):
                    for alias in child.names:
                        sub = f"{base}.{alias.name}"
                        found.add(sub if sub in modules else base)
            visit(child)

    visit(tree)
    return found


packages = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(ast.parse(path.read_text(encoding="utf-8")), name, set(files)) - {name}
            for name, path in files.items()}


def test_every_module_belongs_to_a_stage():
    for module in _graph():
        _stage(module)


def test_imports_point_down_the_stages():
    wrong = []
    for module, imported in _graph().items():
        rank, stage = _stage(module)
        for other in imported:
            other_rank, other_stage = _stage(other)
            if other_rank > rank or (other_rank == rank and other_stage != stage):
                wrong.append(f"{module} ({stage}) imports {other} ({other_stage})")
    assert not wrong, "imports against the stage order:\n" + "\n".join(sorted(wrong))


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    circles = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                circles.append(" -> ".join(path[path.index(other):] + [other]) if other in path else other)
            elif other not in state:
                walk(other, path + [other])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {lines} lines; split it by responsibility"
