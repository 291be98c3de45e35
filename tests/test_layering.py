"""Imports point down only: no import cycle anywhere (function-level imports included), the core
never imports the application shell, and the packages that stand alone import none above them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("snake_gymnax", "plugins", "optimizers", "ppo_trainer")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                found = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for target in found:
                while target and target not in files:  # a name imported from a module
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_cycles() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_arrows_point_down() -> None:
    graph = import_graph()
    for module, targets in graph.items():
        top = module.split(".")[0]
        for target in targets:
            if module.startswith("ppo_trainer") and not module.startswith("ppo_trainer.app"):
                assert not target.startswith("ppo_trainer.app"), (module, target)
            if top in ("snake_gymnax", "plugins", "optimizers"):
                assert not target.startswith("ppo_trainer"), (module, target)
            if top == "plugins":
                assert not target.startswith(("optimizers", "snake_gymnax")), (module, target)
            if top == "optimizers":
                assert target.split(".")[0] in ("optimizers", "plugins"), (module, target)
            if top == "snake_gymnax":
                assert target.startswith("snake_gymnax"), (module, target)
    # the trainer names no env: Snake reaches it through generic paths only
    trainer_text = "\n".join(p.read_text() for p in (ROOT / "ppo_trainer").rglob("*.py"))
    assert "snake_gymnax" not in trainer_text
