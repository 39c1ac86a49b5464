"""The app-level import graph, built from the source: every `import` and `from … import`, at module level or
inside a function body, resolved to the app (or top-level package) it names. Used by test_app_graph.py and
printable as a picture in words: `python -m tests.architecture.app_graph`."""
from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "assist_portal"
#: Top-level packages of the repository that are nodes of the graph (tests and demo data are not).
PACKAGES = ("assist_portal", "formengine", "vocabulary", "jpinput", "mapping", "hersys_client", "connector",
            "benchmarks")
SKIP_PARTS = {"migrations", "__pycache__"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line of the import


def _django_apps(root: Path) -> set[str]:
    return {p.parent.name for p in (root / PROJECT).glob("*/apps.py")}


def node_of(module: str, apps: set[str]) -> str | None:
    """`assist_portal.notifications.services` → `notifications`; `assist_portal.celery` → `assist_portal.celery`
    (each of the project's own modules is a node: urls sits on top, crypto at the bottom); `formengine.engine` →
    `formengine`; anything else (Django, stdlib) → None."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] == PROJECT:
        if len(parts) == 1:
            return None  # the project package itself: imported before any of its modules anyway
        if parts[1] in apps:
            return parts[1]
        return ".".join(parts[:2])
    return parts[0]


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported_modules(tree: ast.AST, module: str, is_package: bool):
    for node in ast.walk(tree):  # ast.walk reaches imports inside functions and classes too
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from assist_portal import notifications` names an app too
                yield f"{target}.{alias.name}", node.lineno


def build_graph(root: Path = ROOT) -> list[Edge]:
    apps = _django_apps(root)
    edges: dict[Edge, None] = {}  # ordered set
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if SKIP_PARTS & set(path.relative_to(root).parts):
                continue
            module = _module_name(path, root)
            source = node_of(module, apps)
            tree = ast.parse(path.read_text("utf-8"), filename=str(path))
            for target_module, line in _imported_modules(tree, module, path.name == "__init__.py"):
                target = node_of(target_module, apps)
                if target and source and target != source:
                    edges[Edge(source, target, f"{path.relative_to(root)}:{line}")] = None
    return list(edges)


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def describe(edges: list[Edge]) -> str:
    by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in edges:
        by_pair[(e.source, e.target)].append(e.where)
    return "\n".join(f"{s} -> {t}  ({len(w)}: {', '.join(w[:3])}{' …' if len(w) > 3 else ''})"
                     for (s, t), w in sorted(by_pair.items()))


if __name__ == "__main__":
    graph = build_graph()
    print(describe(graph))
    for component in cycles(graph):
        print("CYCLE:", " ⇄ ".join(component))
