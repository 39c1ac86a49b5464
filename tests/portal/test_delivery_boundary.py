"""The outbox is generic: nothing under assist_portal/delivery/ imports notifications — at module level, inside a
function, relatively, through importlib or apps.get_model — directly or through the portal modules it imports."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PORTAL = ROOT / "assist_portal"
DELIVERY = PORTAL / "delivery"
FORBIDDEN = "assist_portal.notifications"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module a source file can import: import statements anywhere in the tree (relative ones resolved),
    importlib.import_module/__import__ with a literal name, and apps.get_model("<app label>", ...)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.add(node.args[0].value)
            elif name == "get_model":
                found.add(f"assist_portal.{node.args[0].value.split('.')[0]}")
    return found


def reaches(module: str, target: str) -> bool:
    return module == target or module.startswith(target + ".")


def portal_file(module: str) -> Path | None:
    if not module.startswith("assist_portal"):
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def forbidden_imports(start: list[Path]) -> list[tuple[str, str]]:
    """(importing module, imported module) pairs that reach notifications, following portal imports."""
    todo, seen, offenders = list(start), set(), []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        module = module_name(path)
        for name in imports(path.read_text("utf-8"), module, path.name == "__init__.py"):
            if reaches(name, FORBIDDEN):
                offenders.append((module, name))
            elif (found := portal_file(name)) is not None and not reaches(name, "assist_portal.delivery"):
                todo.append(found)
    return sorted(set(offenders))


def test_delivery_imports_nothing_from_notifications():
    files = sorted(DELIVERY.rglob("*.py"))
    assert len(files) > 5
    assert forbidden_imports(files) == []


def test_the_detector_sees_every_way_of_importing():
    module = "assist_portal.delivery.services"
    hidden = [
        "from assist_portal.notifications.models import Notification",
        "import assist_portal.notifications.selectors as s",
        "def f():\n    from ..notifications import documents\n",
        "def f():\n    from .. import notifications\n",
        "import importlib\nimportlib.import_module('assist_portal.notifications.models')",
        "def f(apps):\n    apps.get_model('notifications', 'Notification')",
    ]
    for source in hidden:
        assert any(reaches(name, FORBIDDEN) for name in imports(source, module)), source
    assert not any(reaches(n, FORBIDDEN) for n in imports("from ..audit.services import audit_record", module))
