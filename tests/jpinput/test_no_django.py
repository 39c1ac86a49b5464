"""jpinput is plain Python: importing it must not import Django."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "jpinput"


def test_no_django_import_statements():
    paths = list(PACKAGE.rglob("*.py"))
    assert paths
    for path in paths:
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "django" or n.startswith(("django.", "rest_framework", "assist_portal"))
                           for n in names), path


def test_importing_jpinput_loads_no_django():
    code = ("import sys, jpinput as j; j.parse_date('R3.1.10'); j.lookup('100-0001'); "
            "j.to_fullwidth_katakana('やまだ'); "
            "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
