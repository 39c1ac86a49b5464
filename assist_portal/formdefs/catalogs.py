"""The catalogs shipped in the `vocabulary` package, as the central admin sees them: one entry per file in
``vocabulary/catalogs/`` (a new file is a new entry; no code lists forms or versions).

This is the one seam between the portal and the vocabulary loader. A catalog file is either the enriched format
(decision 1: top-level ``form``, structured ``rules``, ``item_set``, ``emr_items``) or a legacy COVID-19 item list
(``items-<version>.json``, no ``form``). MERGE NOTE: once ``formengine.load_catalog`` reads the enriched format
(branch ``vocab``), ``catalog_definition`` needs no fallback (``_enriched_definition`` can go).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import vocabulary
from formengine import FORMAT, DefinitionError, load_catalog, validate_definition

from .models import LEGACY_FORM

#: Top-level keys of a definition (formengine's schema) that the enriched catalog carries as they are.
_DEFINITION_KEYS = ("catalog", "disease", "version", "title", "sections", "groups", "items", "rules",
                    "changes_from_previous")


@dataclass(frozen=True)
class BuiltinCatalog:
    id: str  # "<form>-<version>"
    form: str
    version: str
    disease: str
    title: str
    source: dict

    @property
    def label(self) -> str:
        return f"{self.title or self.disease}（{self.id}）"


@lru_cache(maxsize=1)
def _files() -> tuple[tuple[BuiltinCatalog, str], ...]:
    found: list[tuple[BuiltinCatalog, str]] = []
    for path in sorted(vocabulary.CATALOG_DIR.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not raw.get("version"):
            continue
        form = str(raw.get("form") or LEGACY_FORM)
        version = str(raw["version"])
        disease = str(raw.get("disease") or "")
        found.append((BuiltinCatalog(id=f"{form}-{version}", form=form, version=version, disease=disease,
                                     title=str(raw.get("title") or f"{disease} 発生届（{version}）"),
                                     source=dict(raw.get("source") or {})), path.name))
    return tuple(sorted(found, key=lambda entry: (entry[0].form, entry[0].version)))


def builtin_catalogs() -> list[BuiltinCatalog]:
    """Every shipped catalog, by form then version."""
    return [entry for entry, _ in _files()]


def builtin_catalog_get(catalog_id: str) -> BuiltinCatalog:
    """The shipped catalog with this id; a bare version (the COVID-19 admin form before forms were keyed) is
    accepted when exactly one catalog has it. DefinitionError (Japanese) for anything else."""
    catalogs = builtin_catalogs()
    for entry in catalogs:
        if entry.id == catalog_id:
            return entry
    by_version = [entry for entry in catalogs if entry.version == catalog_id]
    if len(by_version) == 1:
        return by_version[0]
    known = "、".join(entry.id for entry in catalogs)
    raise DefinitionError(f"組み込みの項目カタログ「{str(catalog_id)[:60]}」はありません（{known}）。")


@lru_cache(maxsize=16)
def _raw(catalog_id: str) -> dict[str, Any]:
    for entry, filename in _files():
        if entry.id == catalog_id:
            return json.loads((vocabulary.CATALOG_DIR / filename).read_text(encoding="utf-8"))
    raise KeyError(catalog_id)


def catalog_raw(form: str, version: str) -> dict[str, Any] | None:
    """A fresh copy of the shipped catalog of (form, version), or None when none is shipped."""
    try:
        return copy.deepcopy(_raw(f"{form}-{version}"))
    except KeyError:
        return None


def catalog_definition(catalog_id: str) -> tuple[BuiltinCatalog, dict[str, Any]]:
    """The shipped catalog and the (validated) form definition built from it."""
    entry = builtin_catalog_get(catalog_id)
    raw = copy.deepcopy(_raw(entry.id))
    if "form" not in raw:  # legacy item list: the current loader reads it
        return entry, load_catalog(raw)
    try:
        return entry, load_catalog(raw)
    except (DefinitionError, TypeError, KeyError, ValueError):
        # The loader on this branch predates the enriched format (it maps rule texts, not rule objects).
        return entry, _enriched_definition(raw)


def _enriched_definition(raw: dict[str, Any]) -> dict[str, Any]:
    """An enriched catalog is already a definition in all but its envelope: copy what the definition format
    holds (items, groups and rules are the same shapes) and validate it like any definition."""
    defn: dict[str, Any] = {"format": FORMAT}
    for key in _DEFINITION_KEYS:
        if key in raw:
            defn[key] = copy.deepcopy(raw[key])
    defn.setdefault("groups", [])
    defn.setdefault("rules", [])
    problems = validate_definition(defn)
    if problems:
        raise DefinitionError("項目カタログから様式定義を作れません：" + "；".join(problems[:10]), problems)
    return defn
