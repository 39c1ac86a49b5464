"""Form definitions: the JSON Schema, semantic checks, content hash, and catalog → definition conversion.

A definition (format ``hersys-assist-form/1``) is plain JSON::

    {"format": "hersys-assist-form/1", "form": "covid19", "catalog": ..., "disease": ..., "version": "2022-09",
     "title": ...,
     "sections": [{"id", "label"}], "groups": [{"id": "tests", "label", "section", "max": 4, "link_id"}],
     "items": [{"id", "label", "type", "section", "group"?, "values"?: [{"code", "label"}], "required",
                "priority", "medical_judgement", "visible_when"?, "help"?, "emr_source"?, "hersys_path"?,
                "link_id"?, "max_length"?, "min"?, "max"?}],
     "rules": [{"id", "kind", "params", "severity", "message", "source"?}],
     "changes_from_previous": [...]}

``form`` is the stable key of the notification form (``vocabulary`` catalogs, ``<form>-<version>``). Definitions
are built from the enriched catalogs by ``load_catalog`` — all data, no code tables. Items of a repeat group have
ids ``<group>.<key>``; their values live in ``values[<group>]`` as a list of rows
``{<key>: value}`` (docs/contracts.md §1).
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

import vocabulary

from .conditions import TODAY, condition_groups, condition_literals, condition_refs
from .errors import DefinitionError
from .valuetypes import ITEM_TYPES, options_of

FORMAT = "hersys-assist-form/1"
#: The ids (``<form>-<version>``) of the catalogs shipped in ``vocabulary``.
BUILTIN_VERSIONS = vocabulary.catalog_ids()
ENUM_TYPES = ("enum", "multi_enum")

# ---------------------------------------------------------------------------------------------------------
# Schema, lookups, validation, hash


@lru_cache(maxsize=1)
def definition_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("schema/form-definition.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(definition_schema())


def items_by_id(defn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in defn.get("items", []) if isinstance(item, dict) and "id" in item}


def groups_by_id(defn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in defn.get("groups", []) or [] if isinstance(g, dict) and "id" in g}


def group_items(defn: dict[str, Any], group_id: str) -> list[dict[str, Any]]:
    return [item for item in defn.get("items", []) if item.get("group") == group_id]


def row_key(item: dict[str, Any]) -> str:
    """The key of a repeat-group item inside a row: ``tests.method`` → ``method``."""
    return item["id"].split(".", 1)[1] if "." in item["id"] else item["id"]


def content_hash(defn: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a definition: sorted keys, no whitespace, UTF-8."""
    canonical = json.dumps(defn, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _path(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "（全体）"


def validate_definition(defn: Any, *, known_hash: str | None = None) -> list[str]:
    """Every problem of a definition (schema + semantic), in Japanese; an empty list means valid.

    Results are memoised by content hash: a published definition is validated once per process, not on every
    delivery or export that passes through `ensure_valid` (a full check costs ~15 ms). `known_hash`: the content
    hash the caller already holds for exactly this definition (a published FormDefinition's stored hash), which
    spares serialising the whole definition to hash it again (~0.6 ms per confirmation)."""
    if not isinstance(defn, dict):
        return ["様式定義はJSONオブジェクトでなければなりません。"]
    try:
        key = known_hash or content_hash(defn)
    except (TypeError, ValueError):  # not canonical JSON: validate without caching
        return _validate_uncached(defn)
    return list(_validate_cached(key, defn))


_VALIDATED: dict[str, tuple[str, ...]] = {}
_VALIDATED_MAX = 256


def _validate_cached(key: str, defn: dict[str, Any]) -> tuple[str, ...]:
    found = _VALIDATED.get(key)
    if found is None:
        found = tuple(_validate_uncached(defn))
        if len(_VALIDATED) >= _VALIDATED_MAX:
            _VALIDATED.pop(next(iter(_VALIDATED)))
        _VALIDATED[key] = found
    return found


def _validate_uncached(defn: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    schema_errors = sorted(_validator().iter_errors(defn), key=lambda e: list(map(str, e.absolute_path)))
    for error in schema_errors[:50]:
        detail = error.message if len(error.message) < 300 else error.message[:300] + "…"
        problems.append(f"形式エラー（{_path(error)}）：{detail}")
    if problems:
        return problems
    return _semantic_problems(defn)


def ensure_valid(defn: Any, *, known_hash: str | None = None) -> dict[str, Any]:
    problems = validate_definition(defn, known_hash=known_hash)
    if problems:
        raise DefinitionError("様式定義が正しくありません：" + "；".join(problems[:10]), problems)
    return defn


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def _semantic_problems(defn: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    sections = [s["id"] for s in defn["sections"]]
    groups = groups_by_id(defn)
    items = items_by_id(defn)
    for dup in _duplicates(sections):
        problems.append(f"区分ID「{dup}」が重複しています。")
    for dup in _duplicates(g["id"] for g in defn.get("groups", [])):
        problems.append(f"繰り返しグループID「{dup}」が重複しています。")
    for dup in _duplicates(i["id"] for i in defn["items"]):
        problems.append(f"項目ID「{dup}」が重複しています。")
    for dup in _duplicates(r["id"] for r in defn["rules"]):
        problems.append(f"ルールID「{dup}」が重複しています。")
    link_ids = [x["link_id"] for x in [*defn["items"], *defn.get("groups", [])] if "link_id" in x]
    for dup in _duplicates(link_ids):
        problems.append(f"linkId「{dup}」が重複しています。")
    for group in groups.values():
        if group["section"] not in sections:
            problems.append(f"繰り返しグループ「{group['id']}」の区分「{group['section']}」がありません。")
        if group["id"] in items:
            problems.append(f"繰り返しグループID「{group['id']}」が項目IDと同じです。")
        if not group_items(defn, group["id"]):
            problems.append(f"繰り返しグループ「{group['id']}」に項目がありません。")

    for item in defn["items"]:
        iid = item["id"]
        if item["section"] not in sections:
            problems.append(f"項目「{iid}」の区分「{item['section']}」がありません。")
        group_id = item.get("group")
        if group_id is not None:
            group = groups.get(group_id)
            if group is None:
                problems.append(f"項目「{iid}」の繰り返しグループ「{group_id}」がありません。")
            else:
                if not iid.startswith(group_id + ".") or iid.count(".") != 1:
                    problems.append(f"繰り返しグループの項目ID「{iid}」は「{group_id}.<名前>」の形にしてください。")
                if item["section"] != group["section"]:
                    problems.append(f"項目「{iid}」の区分がグループ「{group_id}」の区分と異なります。")
                if item.get("visible_when") is not None:
                    problems.append(f"繰り返しグループの項目「{iid}」には表示条件を付けられません。")
        else:
            prefix = iid.split(".", 1)[0]
            if prefix in groups and "." in iid:
                problems.append(f"項目「{iid}」は繰り返しグループ「{prefix}」の項目と同じ名前で始まっています。")
        if item["type"] not in ITEM_TYPES:
            problems.append(f"項目「{iid}」の型「{item['type']}」は使えません。")
        if item["type"] in ENUM_TYPES:
            codes = [v["code"] for v in item.get("values", [])]
            if not codes:
                problems.append(f"選択肢型の項目「{iid}」に選択肢がありません。")
            for dup in _duplicates(codes):
                problems.append(f"項目「{iid}」の選択肢コード「{dup}」が重複しています。")
        elif "values" in item:
            problems.append(f"項目「{iid}」は選択肢型ではないため選択肢を持てません。")
        if "min" in item and "max" in item and item["min"] > item["max"]:
            problems.append(f"項目「{iid}」の最小値が最大値より大きくなっています。")
        if item.get("visible_when") is not None:
            problems.extend(_condition_problems(defn, item["visible_when"], f"項目「{iid}」の表示条件"))

    for rule in defn["rules"]:
        problems.extend(_rule_problems(defn, rule))
    return problems


def _condition_problems(defn: dict[str, Any], cond: Any, where: str) -> list[str]:
    problems: list[str] = []
    items = items_by_id(defn)
    groups = groups_by_id(defn)
    for ref in condition_refs(cond):
        if ref not in items:
            problems.append(f"{where}：項目「{ref}」がありません。")
    for gid in condition_groups(cond):
        if gid not in groups:
            problems.append(f"{where}：繰り返しグループ「{gid}」がありません。")
    for ref, op, operand in condition_literals(cond):
        item = items.get(ref)
        if item is None:
            continue
        codes = {c for c, _ in options_of(item)}
        if item["type"] in (*ENUM_TYPES, "prefecture"):
            operands = operand if op == "in" else [operand] if op in ("eq", "ne", "includes") else []
            for value in operands:
                if value not in codes:
                    problems.append(f"{where}：項目「{ref}」に選択肢「{value}」がありません。")
            if op in ("lt", "lte", "gt", "gte"):
                problems.append(f"{where}：選択肢型の項目「{ref}」に大小比較は使えません。")
        if op in ("lt", "lte", "gt", "gte") and item["type"] not in ("integer", "age", "date"):
            if item["type"] not in (*ENUM_TYPES, "prefecture"):
                problems.append(f"{where}：項目「{ref}」（{item['type']}）に大小比較は使えません。")
    return problems


def _rule_problems(defn: dict[str, Any], rule: dict[str, Any]) -> list[str]:
    rid, kind, params = rule["id"], rule["kind"], rule["params"]
    where = f"ルール「{rid}」"
    items = items_by_id(defn)
    groups = groups_by_id(defn)
    problems: list[str] = []

    def need_item(ref: str, types: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        item = items.get(ref)
        if item is None:
            problems.append(f"{where}：項目「{ref}」がありません。")
            return None
        if types and item["type"] not in types:
            problems.append(f"{where}：項目「{ref}」の型は{'・'.join(types)}でなければなりません。")
        return item

    for key in ("when", "where", "left", "right"):
        if key in params:
            problems.extend(_condition_problems(defn, params[key], where))
    if kind == "date_order":
        for level in params["chain"]:
            for ref in level if isinstance(level, list) else [level]:
                if ref != TODAY:
                    need_item(ref, ("date",))
    elif kind in ("required_if", "expected_if"):
        for ref in params["items"]:
            need_item(ref)
    elif kind == "at_least_one":
        if params["group"] not in groups:
            problems.append(f"{where}：繰り返しグループ「{params['group']}」がありません。")
        if "item" in params:
            need_item(params["item"])
    elif kind == "consistency_warning":
        if "item" in params:
            need_item(params["item"])
    elif kind == "derive":
        need_item(params["target"], ("age",))
        need_item(params["from"], ("date",))
        need_item(params["at"], ("date",))
    elif kind == "max_repeat":
        group = groups.get(params["group"])
        if group is None:
            problems.append(f"{where}：繰り返しグループ「{params['group']}」がありません。")
        elif params["max"] > group["max"]:
            problems.append(f"{where}：最大件数がグループ「{group['id']}」の枠数（{group['max']}）を超えています。")
    elif kind == "not_notifiable_if_empty":
        need_item(params["item"])
    elif kind == "suggest":
        item = need_item(params["item"], ("enum", "multi_enum"))
        if item is not None and params["value"] not in {c for c, _ in options_of(item)}:
            problems.append(f"{where}：項目「{item['id']}」に選択肢「{params['value']}」がありません。")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Catalog → definition

#: The keys a definition takes from a catalog item / group / rule (the rest of a catalog — source, item_set,
#: emr_items — stays in ``vocabulary``).
_ITEM_KEYS = ("id", "label", "type", "section", "group", "values", "required", "priority", "medical_judgement",
              "visible_when", "help", "emr_source", "hersys_path", "link_id", "max_length", "min", "max")
_GROUP_KEYS = ("id", "label", "section", "max", "link_id", "help")
_RULE_KEYS = ("id", "kind", "params", "severity", "message", "source")


def _structured_rules_problem(catalog: dict[str, Any]) -> str | None:
    rules = catalog.get("rules", [])
    texts = [r for r in rules if isinstance(r, str)] if isinstance(rules, list) else []
    if catalog.get("catalog") == vocabulary.CATALOG_FORMAT and not texts:
        return None
    sample = "".join(f"「{t[:120]}」" for t in texts[:3])
    return (
        f"{vocabulary.CATALOG_FORMAT} 形式の項目カタログではありません。ルールを英文（{sample or '…'}）でしか持たない"
        "カタログ（旧 HER-SYS 項目一覧の形式）は読み込めません。各ルールを構造化（id・kind・params・severity・"
        "message、元の文は source）したカタログにしてください（vocabulary/README.md）。"
    )


def load_catalog(catalog: dict[str, Any]) -> dict[str, Any]:
    """Build a validated form definition from an enriched item catalog (``notification-items/1``).

    Everything comes from the catalog — items, value sets, link ids, display conditions, rules — so a catalog
    whose rules use the existing rule kinds needs no code change. A raw catalog whose rules are English
    sentences is refused with a DefinitionError saying so.
    """
    if not isinstance(catalog, dict) or not isinstance(catalog.get("items"), list):
        raise DefinitionError("カタログの形式が正しくありません（items がありません）。")
    problem = _structured_rules_problem(catalog)
    if problem:
        raise DefinitionError(problem, [problem])
    envelope = vocabulary.catalog_problems(catalog)
    if envelope:
        raise DefinitionError("カタログの形式が正しくありません：" + "；".join(envelope), envelope)

    def pick(source: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(source, dict):
            raise DefinitionError(f"カタログの要素が不正です：{str(source)[:80]}")
        unknown = [str(k)[:40] for k in source if k not in keys]
        if unknown:  # a misspelt key (visble_when) must not vanish silently
            raise DefinitionError(f"カタログの要素「{str(source.get('id', ''))[:80]}」に使えないキーがあります："
                                  + "、".join(unknown))
        return {k: copy.deepcopy(source[k]) for k in keys if k in source}

    items = []
    for raw in catalog["items"]:
        item = pick(raw, _ITEM_KEYS)
        item.setdefault("link_id", item["id"])
        items.append(item)
    defn = {
        "format": FORMAT,
        "form": catalog["form"],
        "catalog": catalog["catalog"],
        "disease": str(catalog.get("disease", "")),
        "version": catalog["version"],
        "title": str(catalog.get("title") or f"{catalog.get('disease', '')} 発生届（{catalog['version']}）"),
        "sections": [pick(s, ("id", "label", "help")) for s in catalog.get("sections", [])],
        "groups": [pick(g, _GROUP_KEYS) for g in catalog.get("groups", [])],
        "items": items,
        "rules": [pick(r, _RULE_KEYS) for r in catalog.get("rules", [])],
        "changes_from_previous": list(catalog.get("changes_from_previous", [])),
    }
    return ensure_valid(defn)


def _shipped(catalog_id: str) -> str:
    try:
        return vocabulary.resolve(catalog_id)
    except KeyError:
        raise DefinitionError(
            f"組み込みの項目カタログ「{str(catalog_id)[:60]}」はありません（{'、'.join(vocabulary.catalog_ids())}）。"
        ) from None


def builtin_catalog(catalog_id: str) -> dict[str, Any]:
    """A catalog shipped in the ``vocabulary`` package (a fresh copy; the shared folder is never read at run
    time). ``catalog_id`` is ``<form>-<version>``; a bare version that exactly one catalog has is accepted."""
    return vocabulary.catalog(_shipped(catalog_id))


def builtin_definition(catalog_id: str) -> dict[str, Any]:
    """The definition built from a shipped catalog (a fresh copy each call; built once per process)."""
    return copy.deepcopy(_builtin_definition(_shipped(catalog_id)))


@lru_cache(maxsize=64)
def _builtin_definition(catalog_id: str) -> dict[str, Any]:
    return load_catalog(vocabulary.catalog(catalog_id))
