"""The notification vocabulary: every form's item catalog exactly once (plain Python, no Django).

Everything else — ``mapping``, ``formengine``, ``hersys_client`` and the portal — reads item ids, value sets,
link ids and rules from here. The core knows no disease: a new form is a new catalog file.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"


def catalog_versions() -> tuple[str, ...]:
    """The versions of the catalogs shipped with the product, oldest first."""
    return tuple(sorted(p.stem.removeprefix("items-") for p in CATALOG_DIR.glob("items-*.json")))


def catalog_path(version: str) -> Path:
    return CATALOG_DIR / f"items-{version}.json"


def catalog(version: str) -> dict[str, Any]:
    """A fresh copy of a shipped catalog. KeyError for an unknown version."""
    return copy.deepcopy(_catalog(version))


@lru_cache(maxsize=32)
def _catalog(version: str) -> dict[str, Any]:
    if version not in catalog_versions():
        raise KeyError(version)
    text = resources.files(__package__).joinpath(f"catalogs/items-{version}.json").read_text("utf-8")
    return json.loads(text)
