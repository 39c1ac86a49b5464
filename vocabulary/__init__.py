"""The notification vocabulary: every form's item catalog exactly once (plain Python, no Django).

Everything else — ``mapping``, ``formengine``, ``hersys_client`` and the portal — reads item ids, value sets,
link ids, rules and required item sets from here; item ids used in code are the named constants of
``vocabulary.ids``. The core knows no disease: a new form (or a new version of one) is a new catalog file
``catalogs/<form>-<version>.json`` in the format described in README.md (``notification-items/1``).

API (all reads are cached; functions returning catalogs or lists return fresh copies):

* ``catalog_ids()`` — every shipped catalog id (``<form>-<version>``), by form, oldest version first
* ``catalog(catalog_id)`` — the catalog (KeyError for an unknown id)
* ``form_keys()``, ``catalogs_for(form)``, ``latest(form)``, ``find(form, version)``
* ``item_set(form, version)`` — the item ids the destination requires for that version
* ``disease(catalog_id)``, ``emr_items(form, version)`` — single fields, without copying the catalog
* ``item_labels(form, version)``, ``value_codes(catalog_id, item_id)``
* ``resolve(ref)`` — a catalog id, or a bare version that exactly one catalog has (legacy callers)
"""
from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_FORMAT = "notification-items/1"
CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
FORM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")
TOP_LEVEL_KEYS = ("catalog", "form", "disease", "version", "title", "source", "sections", "groups", "items", "rules",
                  "item_set", "emr_items", "changes_from_previous")
SOURCE_KEYS = ("document", "issuer", "form", "revision", "note")


class CatalogError(ValueError):
    """A catalog file that breaks the format (raised when the catalogs are first read)."""


def catalog_id(form: str, version: str) -> str:
    """The id of the catalog of ``form`` at ``version``: ``<form>-<version>``."""
    return f"{form}-{version}"


def catalog_ids() -> tuple[str, ...]:
    """Every shipped catalog id, grouped by form (forms sorted), each form's versions oldest first."""
    return tuple(_index())


def catalog(catalog_id: str) -> dict[str, Any]:
    """A fresh copy of a shipped catalog. KeyError for an unknown id."""
    return copy.deepcopy(_index()[catalog_id])


def catalog_path(catalog_id: str) -> Path:
    """The file of a shipped catalog. KeyError for an unknown id."""
    if catalog_id not in _index():
        raise KeyError(catalog_id)
    return CATALOG_DIR / f"{catalog_id}.json"


def form_keys() -> tuple[str, ...]:
    """The forms that have at least one catalog, sorted."""
    return tuple(dict.fromkeys(c["form"] for c in _index().values()))


def catalogs_for(form: str) -> tuple[str, ...]:
    """The catalog ids of one form, oldest version first (empty for an unknown form)."""
    return tuple(cid for cid, c in _index().items() if c["form"] == form)


def latest(form: str) -> str:
    """The catalog id of the newest version of ``form``. KeyError for an unknown form."""
    found = catalogs_for(form)
    if not found:
        raise KeyError(form)
    return found[-1]


def find(form: str, version: str) -> str | None:
    """The catalog id of ``form`` at ``version``, or None when no such catalog is shipped."""
    cid = catalog_id(form, version)
    return cid if cid in _index() else None


def item_set(form: str, version: str) -> tuple[str, ...]:
    """The ids of the items the destination requires for ``form`` at ``version`` (what the sandbox checks).
    KeyError when no such catalog is shipped."""
    cid = find(form, version)
    if cid is None:
        raise KeyError(catalog_id(form, version))
    return tuple(_index()[cid]["item_set"])


def disease(catalog_id: str) -> str:
    """The Japanese disease name of a catalog (no copy of the catalog). KeyError for an unknown id."""
    return _index()[catalog_id]["disease"]


def emr_items(form: str, version: str) -> tuple[str, ...] | None:
    """The ids an EMR extract may fill for ``form`` at ``version`` (no copy of the catalog); None when no such
    catalog is shipped or it does not say."""
    cid = find(form, version)
    declared = _index()[cid].get("emr_items") if cid else None
    return tuple(str(i) for i in declared) if isinstance(declared, list) else None


def item_labels(form: str, version: str) -> dict[str, str]:
    """{item id: label} of a catalog (a fresh dict). KeyError when no such catalog is shipped."""
    cid = find(form, version)
    if cid is None:
        raise KeyError(catalog_id(form, version))
    return {item["id"]: item["label"] for item in _index()[cid]["items"]}


def value_codes(catalog_id: str, item_id: str) -> tuple[str, ...]:
    """The value codes of an enum item of a catalog (empty for an item without a value set)."""
    for item in _index()[catalog_id]["items"]:
        if item["id"] == item_id:
            return tuple(v["code"] for v in item.get("values", []))
    raise KeyError(item_id)


def resolve(ref: str) -> str:
    """A catalog id for ``ref``: a catalog id itself, or a bare version (``2021-03``) that exactly one shipped
    catalog has — kept for callers that predate forms. KeyError when unknown or ambiguous."""
    index = _index()
    if ref in index:
        return ref
    matches = [cid for cid, c in index.items() if c["version"] == ref]
    if len(matches) != 1:
        raise KeyError(ref)
    return matches[0]


def catalog_problems(data: Any, *, file_name: str | None = None) -> list[str]:
    """Problems of a catalog's envelope (English, for developers): keys, form/version, ids, item_set, emr_items.
    Rules and conditions are checked when ``formengine.load_catalog`` builds the definition."""
    if not isinstance(data, dict):
        return ["a catalog is a JSON object"]
    problems: list[str] = []
    if data.get("catalog") != CATALOG_FORMAT:
        problems.append(f'"catalog" must be "{CATALOG_FORMAT}"')
    missing = [k for k in TOP_LEVEL_KEYS if k not in data]
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        problems.append("unknown keys: " + ", ".join(map(str, unknown)))
    form, version = data.get("form"), data.get("version")
    if not isinstance(form, str) or not FORM_KEY.match(form):
        problems.append(f'"form" must match {FORM_KEY.pattern}')
    if not isinstance(version, str) or not VERSION.match(version):
        problems.append(f'"version" must match {VERSION.pattern}')
    if file_name is not None and isinstance(form, str) and isinstance(version, str):
        if file_name != f"{catalog_id(form, version)}.json":
            problems.append(f"file name must be {catalog_id(form, version)}.json")
    source = data.get("source")
    if not isinstance(source, dict) or any(not isinstance(source.get(k), str) or not source.get(k)
                                           for k in SOURCE_KEYS):
        problems.append('"source" must cite the document: ' + ", ".join(SOURCE_KEYS))
    items = data.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
        problems.append('"items" must be a list of objects with an "id"')
        return problems
    ids = [i["id"] for i in items]
    if len(set(ids)) != len(ids):
        problems.append("duplicate item ids")
    for key in ("item_set", "emr_items"):
        listed = data.get(key)
        if not isinstance(listed, list) or not all(isinstance(i, str) for i in listed):
            problems.append(f'"{key}" must be a list of item ids')
        else:
            strays = [i for i in listed if i not in ids]
            if strays:
                problems.append(f'"{key}" names unknown items: ' + ", ".join(strays))
    if not isinstance(data.get("rules"), list) or not all(isinstance(r, dict) for r in data["rules"]):
        problems.append('"rules" must be a list of structured rules (objects with id, kind, params, ...)')
    return problems


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CatalogError(f"{path.name}: not JSON ({exc})") from None
        problems = catalog_problems(data, file_name=path.name)
        if problems:
            raise CatalogError(f"{path.name}: " + "; ".join(problems))
        found[catalog_id(data["form"], data["version"])] = data
    return {cid: found[cid] for cid in sorted(found, key=lambda c: (found[c]["form"], found[c]["version"]))}
