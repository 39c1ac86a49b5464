"""The catalogs shipped in the `vocabulary` package, as the central admin sees them: one entry per catalog file
(a new file is a new entry; no code lists forms or versions)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import vocabulary
from formengine import DefinitionError, builtin_definition


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


def _entry(catalog_id: str) -> BuiltinCatalog:
    raw = vocabulary.catalog(catalog_id)
    disease = str(raw.get("disease") or "")
    return BuiltinCatalog(id=catalog_id, form=raw["form"], version=raw["version"], disease=disease,
                          title=str(raw.get("title") or f"{disease} 発生届（{raw['version']}）"),
                          source=dict(raw.get("source") or {}))


def builtin_catalogs() -> list[BuiltinCatalog]:
    """Every shipped catalog, by form then version."""
    return sorted((_entry(cid) for cid in vocabulary.catalog_ids()), key=lambda e: (e.form, e.version))


def builtin_catalog_get(catalog_id: str) -> BuiltinCatalog:
    """The shipped catalog with this id (or a bare version that exactly one catalog has). DefinitionError
    (Japanese) for anything else."""
    try:
        return _entry(vocabulary.resolve(str(catalog_id)))
    except KeyError:
        known = "、".join(vocabulary.catalog_ids())
        raise DefinitionError(f"組み込みの項目カタログ「{str(catalog_id)[:60]}」はありません（{known}）。")


def catalog_raw(form: str, version: str) -> dict[str, Any] | None:
    """A fresh copy of the shipped catalog of (form, version), or None when none is shipped."""
    found = vocabulary.find(form, version)
    return vocabulary.catalog(found) if found else None


def catalog_definition(catalog_id: str) -> tuple[BuiltinCatalog, dict[str, Any]]:
    """The shipped catalog and the (validated) form definition built from it."""
    entry = builtin_catalog_get(catalog_id)
    return entry, builtin_definition(entry.id)
