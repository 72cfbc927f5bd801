"""Dependencies point inward: the pure core imports no web, database or crypto library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only("the import graph of the code: no database")


@pytest.mark.parametrize("package", ["vir.domain", "vir.audit"])
def test_core_packages_stay_pure(package: str) -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = {'fastapi', 'starlette', 'sqlalchemy', 'pysodium', 'cryptography', 'httpx'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_only_crypto_imports_crypto_libraries() -> None:
    root = Path(__file__).resolve().parents[2] / "vir"
    for path in root.rglob("*.py"):
        if "crypto" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        for lib in ("import pysodium", "from cryptography", "import cryptography"):
            assert lib not in text, f"{path} imports a crypto library"


# --- The import graph of vir: no cycles, and layers that only point inward. ---------

ROOT = Path(__file__).resolve().parents[2] / "vir"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module → the vir modules it imports, anywhere in it: at module level, inside
    functions and under ``TYPE_CHECKING`` alike (each is a dependency all the same).
    ``from vir.x import name`` counts as an import of ``vir.x.name`` when that is a
    module, else of ``vir.x``."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(known(a.name) for a in node.names if a.name.startswith("vir"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                if base == "vir" or base.startswith("vir."):
                    for alias in node.names:
                        full = f"{base}.{alias.name}"
                        imported.add(full if full in modules else known(base))
        graph[module] = {m for m in imported if m is not None and m != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


# Imports that close a cycle today, each to be removed and then deleted from here; the
# test fails on any other cycle, and on an entry here that is no longer an import.
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def test_import_graph_sees_function_level_imports() -> None:
    """The graph is worth what it sees: a function-level import is an edge."""
    graph = _import_graph()
    assert "vir.store.db" in graph["vir.cli"]  # cli imports lazily, in its commands
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]


def test_no_import_cycles_between_modules() -> None:
    graph = _import_graph()
    for source, target in KNOWN_BACK_EDGES:
        assert target in graph[source], f"{source} -> {target} is gone: delete it here"
        graph[source].discard(target)
    assert _cycles(graph) == []


def test_no_import_cycles_between_layers() -> None:
    layers: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        layers.setdefault(_layer(module), set()).update(
            _layer(t) for t in targets if _layer(t) != _layer(module)
        )
    assert _cycles(layers) == []


# What each layer may import of vir (besides itself and the root package, which holds
# only the version). The core (domain, audit) imports nothing else; crypto only the
# core (the checkpoint formats it signs live in vir.audit); the store the core and
# crypto; the client the core and crypto (it blinds). Outer layers: what they may not.
MAY_IMPORT = {
    "vir.domain": {"vir.domain", "vir.audit"},
    "vir.audit": {"vir.domain", "vir.audit"},
    "vir.crypto": {"vir.domain", "vir.audit"},
    "vir.store": {"vir.domain", "vir.audit", "vir.crypto"},
    "vir.client": {"vir.domain", "vir.crypto"},
}
_TOP = {"vir.client", "vir.server", "vir.cli", "vir.cli_keyholder"}
MAY_NOT_IMPORT = {
    "vir.reports": {"vir.store", "vir.services", "vir.api", "vir.keyholder", *_TOP},
    "vir.services": {"vir.api", "vir.keyholder", *_TOP},
    "vir.api": {"vir.keyholder", *_TOP},
    "vir.keyholder": _TOP,
}


def test_layers_point_inward() -> None:
    crossings = []
    for module, targets in sorted(_import_graph().items()):
        layer = _layer(module)
        for target in sorted(targets):
            other = _layer(target)
            if other in (layer, "vir"):
                continue
            allowed = MAY_IMPORT.get(layer)
            if (allowed is not None and other not in allowed) or other in MAY_NOT_IMPORT.get(
                layer, ()
            ):
                crossings.append(f"{module} -> {target}")
    assert crossings == []


def test_layer_rules_can_fail() -> None:
    """The store once imported ``Caller`` from services: that edge would be refused."""
    layer, target = "vir.store", "vir.services"
    assert target not in MAY_IMPORT[layer]


# The index holds no OPRF key (DESIGN.md §4): none of its modules may import the code
# that loads one. The key holder and the development set-up (which makes the key
# holders' keys) are the only places that do.
KEY_CODE = {"vir.crypto.keys"}
INDEX_LAYERS = {"vir.api", "vir.services", "vir.store", "vir.reports", "vir.domain", "vir.audit"}


def test_the_index_never_imports_key_code() -> None:
    graph = _import_graph()
    reach = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _layer(module) in INDEX_LAYERS
        for target in targets
        if target in KEY_CODE
    }
    assert reach == set()
    # vir serve's own module graph, followed transitively from the index's app: no key code.
    seen, todo = set(), ["vir.api.app"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.get(module, ()))
    assert seen & KEY_CODE == set(), "vir.api.app reaches the key code"
