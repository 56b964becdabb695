"""The layering of docs/architecture.md, checked on the source: adapters (api/, web/, cli.py)
call services, services own the transactions, and the layers below never reach up. A new
module that breaks a rule fails here with the offending import or call."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "learnloop"

#: layer -> the layers it must not import (the arrows of docs/architecture.md point down only)
FORBIDDEN = {
    "content": {
        "science",
        "store",
        "llm",
        "interop",
        "sandbox",
        "jobs",
        "services",
        "api",
        "web",
        "cli",
        "server",
    },
    "science": {"store", "llm", "interop", "sandbox", "jobs", "services", "api", "web", "cli", "server"},
    "store": {"services", "api", "web", "cli", "server"},
    "llm": {"services", "api", "web", "cli", "server"},
    "interop": {"services", "api", "web", "cli", "server"},
    "sandbox": {"services", "api", "web", "cli", "server"},
    "services": {"api", "web", "cli", "server"},
    "api": {"web"},
    "web": {"api"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every learnloop module ``path`` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layers_import_only_downwards() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, path in MODULES.items()
        for target in _imports(path)
        if _layer(target) in FORBIDDEN.get(_layer(module), set())
    )
    assert not wrong, "\n".join(wrong)


def test_services_import_no_circle() -> None:
    services = {m for m in MODULES if _layer(m) == "services"}
    graph = {m: _imports(MODULES[m]) & services - {m} for m in services}
    circles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, circles


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) in {"api", "web"}))
def test_handlers_never_open_database_sessions(module: str) -> None:
    """Services own transactions: an adapter that calls ``ctx.session()`` itself bypasses them."""
    calls = [
        node.lineno
        for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "session"
        and not node.args
    ]
    assert not calls, f"{MODULES[module]}: lines {calls} open a database session"
