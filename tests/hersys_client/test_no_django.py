"""hersys_client must not import Django: the VPN-side worker and connectors run it without Django."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hersys_client_imports_no_django() -> None:
    code = (
        "import sys\n"
        "import hersys_client, hersys_client.client, hersys_client.bundle, hersys_client.errors\n"
        "import hersys_client.devpki, hersys_client.sandbox.server, hersys_client.sandbox.testing\n"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'rest_framework')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
