"""Shared fixtures. Tests run against real PostgreSQL and Redis (see scripts/with_services.py)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEMO_SAMPLES = ROOT / "demo" / "emr-samples"
