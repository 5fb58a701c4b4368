"""The package's layering: arrows only point down (DESIGN.md, "Layout").

    cli -> agent / report / analysis -> backends -> spec -> trainers, sweep

Read from the source with `ast`, so an import under `if TYPE_CHECKING:` or inside a function
counts too: a reader meets it all the same. Run alone as the README's layering check:
`uv run pytest tests/test_layers.py`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sweeper"

# What each concern may import besides itself. The small shared modules (errors, text,
# output) sit below everything.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "text": set(),
    "output": {"errors", "text"},
    "sweep": {"errors", "text"},
    "trainers": {"errors", "text"},
    "spec": {"sweep", "trainers", "errors", "text"},
    "backends": {"spec", "sweep", "trainers", "errors", "text", "output"},
    "agent": {"backends", "spec", "sweep", "trainers", "errors", "text", "output"},
    "analysis": {"agent", "backends", "spec", "sweep", "trainers", "errors", "text", "output"},
    "report": {
        "agent",
        "analysis",
        "backends",
        "spec",
        "sweep",
        "trainers",
        "errors",
        "text",
        "output",
    },
    "cli": {
        "agent",
        "analysis",
        "report",
        "backends",
        "spec",
        "sweep",
        "trainers",
        "errors",
        "text",
        "output",
    },
    "__main__": {"cli"},
}


def _concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> dict[str, set[tuple[str, str]]]:
    """{concern: {(importing file, imported concern)}} over every module of the package."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent)
        module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        names: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.append(node.module)
            elif isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
        for name in names:
            if name == "sweeper" or name.startswith("sweeper."):
                found[_concern(module)].add((str(relative), _concern(name)))
    return found


def test_every_concern_is_known() -> None:
    assert set(_imports()) <= set(ALLOWED), "a new top-level module: place it in ALLOWED"


@pytest.mark.parametrize("concern", sorted(ALLOWED))
def test_imports_point_down(concern: str) -> None:
    wrong = sorted(
        f"{where} imports sweeper.{target}"
        for where, target in _imports().get(concern, set())
        if target != concern and target not in ALLOWED[concern]
    )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_concerns() -> None:
    graph = {
        concern: {target for _, target in edges if target != concern}
        for concern, edges in _imports().items()
    }
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(node) :], node]))
        if node in done:
            return
        for target in sorted(graph.get(node, set())):
            visit(target, [*trail, node])
        done.add(node)

    for concern in sorted(graph):
        visit(concern, [])
