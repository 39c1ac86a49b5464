"""No item id is typed as a string literal outside the vocabulary package, the catalogs, tests and migrations.

Code that needs an item id imports its constant from ``vocabulary.ids``. The banned words are every item id of
every shipped catalog (``patient.name``, ``tests.method`` …: ids always contain a dot). Group ids (``tests``)
and value codes (``yes``) are ordinary words and are not scanned — code names them through ``vocabulary.ids``
too, but a scan could not tell them from English. Every string constant of every git-tracked ``.py`` file is
checked, f-string parts included, as a whole and word by word (``"patient.name: …"`` counts);
docstrings are documentation and may mention ids.
"""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

import vocabulary

ROOT = Path(__file__).resolve().parents[2]
EXEMPT_PREFIXES = ("vocabulary/", "tests/")


def exempt(path: str) -> bool:
    return path.startswith(EXEMPT_PREFIXES) or "/migrations/" in path


def item_ids() -> set[str]:
    return {item["id"] for cid in vocabulary.catalog_ids() for item in vocabulary.catalog(cid)["items"]}


def id_pattern(ids: set[str]) -> re.Pattern[str]:
    words = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_.])(?:{words})(?![A-Za-z0-9_])")


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def literals(source: str, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
    """(line, text) of every string constant (f-string parts included) that contains an item id."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if pattern.search(node.value):
                hits.append((node.lineno, node.value))
    return sorted(hits)


def tracked_python() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", "*.py"], cwd=ROOT, capture_output=True, check=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    return [p for p in out.decode("utf-8").split("\0") if p and (ROOT / p).is_file()]


def test_no_item_id_literal_outside_the_vocabulary() -> None:
    pattern = id_pattern(item_ids())
    scanned = 0
    offenders = []
    for path in tracked_python():
        if exempt(path):
            continue
        scanned += 1
        for line, text in literals((ROOT / path).read_text(encoding="utf-8"), pattern):
            offenders.append(f"{path}:{line}: {text[:80]!r}")
    assert scanned > 50
    assert not offenders, "item ids typed as literals (use vocabulary.ids):\n" + "\n".join(offenders)


def test_the_scan_catches_plain_fstring_and_embedded_literals() -> None:
    pattern = id_pattern({"patient.name", "tests.method"})
    source = '''
"""Module docstring may say patient.name."""
A = "patient.name"
B = f"{x}: tests.method"
C = "patient.name: 不明"
D = "patient.name_kana"          # another id, not this one
E = "xpatient.name"
F = {"key": "tests"}
def f():
    """Docstring: tests.method."""
    return g("tests.method")
'''
    assert [line for line, _ in literals(source, pattern)] == [3, 4, 5, 11]


def test_exemptions() -> None:
    assert exempt("vocabulary/ids.py") and exempt("tests/mapping/variants.py")
    assert exempt("assist_portal/formdefs/migrations/0001_initial.py")
    assert not exempt("mapping/assemble.py") and not exempt("assist_portal/notifications/services.py")
