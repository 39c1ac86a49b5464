"""Fixtures for the mapping tests: no Django, no database. The public samples come from ../shared (the CI
always has it; tests that need it skip cleanly without it) or, for the extracts, from demo/emr-samples."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "emr-samples"
DEMO = ROOT / "demo" / "emr-samples"


def _samples_dir() -> Path:
    return SAMPLES if (SAMPLES / "answer-key.json").is_file() else DEMO


@pytest.fixture(scope="session")
def samples() -> Path:
    d = _samples_dir()
    if not (d / "ss-mix2").is_dir():
        pytest.skip("EMR samples not available")
    return d


@pytest.fixture(scope="session")
def answer_key() -> dict[str, dict[str, Any]]:
    p = SAMPLES / "answer-key.json"
    if not p.is_file():
        pytest.skip("../shared/emr-samples/answer-key.json not available")
    return json.loads(p.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def scorer() -> ModuleType:
    """The acceptance scorer itself, so the tests count recall and wrong fills exactly as it does."""
    p = SHARED / "tools" / "score_extract.py"
    if not p.is_file():
        pytest.skip("../shared/tools/score_extract.py not available")
    spec = importlib.util.spec_from_file_location("score_extract", p)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def codes(samples: Path) -> Any:
    from mapping import load_local_codes

    return load_local_codes(samples / "local-codes.json")


def patient_dir(samples: Path, pid: str) -> Path:
    return samples / "ss-mix2" / pid[:3] / pid[3:6] / pid


def read_folder(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
