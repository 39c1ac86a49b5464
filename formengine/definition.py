"""Form definitions: the JSON Schema, semantic checks, content hash, and catalog → definition conversion.

A definition (format ``hersys-assist-form/1``) is plain JSON::

    {"format": "hersys-assist-form/1", "catalog": ..., "disease": ..., "version": "2022-09", "title": ...,
     "sections": [{"id", "label"}], "groups": [{"id": "tests", "label", "section", "max": 4, "link_id"}],
     "items": [{"id", "label", "type", "section", "group"?, "values"?: [{"code", "label"}], "required",
                "priority", "medical_judgement", "visible_when"?, "help"?, "emr_source"?, "hersys_path"?,
                "link_id"?, "max_length"?, "min"?, "max"?}],
     "rules": [{"id", "kind", "params", "severity", "message", "source"?}],
     "changes_from_previous": [...]}

Items of a repeat group have ids ``<group>.<key>``; their values live in ``values[<group>]`` as a list of rows
``{<key>: value}`` (docs/contracts.md §1).
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

import vocabulary

from .conditions import TODAY, condition_groups, condition_literals, condition_refs
from .errors import DefinitionError
from .valuetypes import ITEM_TYPES, options_of

FORMAT = "hersys-assist-form/1"
BUILTIN_VERSIONS = vocabulary.catalog_versions()
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


def validate_definition(defn: Any) -> list[str]:
    """Every problem of a definition (schema + semantic), in Japanese; an empty list means valid.

    Results are memoised by content hash: a published definition is validated once per process, not on every
    delivery or export that passes through `ensure_valid` (a full check costs ~15 ms)."""
    if not isinstance(defn, dict):
        return ["様式定義はJSONオブジェクトでなければなりません。"]
    try:
        key = content_hash(defn)
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


def ensure_valid(defn: Any) -> dict[str, Any]:
    problems = validate_definition(defn)
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

#: FHIR linkIds following the paper form 別記様式 (eInfectionReport IG): i0_* header, i1_<n> the paper field n,
#: i1_<n>_<k> further items of field n; i2_* HER-SYS items that are not on the paper form. See ADR 0005.
LINK_IDS: dict[str, str] = {
    "report.report_date": "i0_1",
    "report.physician_name": "i0_2",
    "report.facility_name": "i0_3",
    "report.facility_address": "i0_4",
    "report.facility_phone": "i0_5",
    "report.diagnosis_class": "i1_1",
    "report.notification_target": "i1_1_1",
    "patient.name": "i1_2",
    "patient.name_kana": "i1_2_1",
    "patient.sex": "i1_3",
    "patient.birth_date": "i1_4",
    "patient.age": "i1_5",
    "patient.occupation": "i1_6",
    "patient.address": "i1_7",
    "patient.postal_code": "i1_7_1",
    "patient.phone": "i1_7_2",
    "patient.residence_address": "i1_8",
    "patient.guardian_name": "i1_9",
    "patient.guardian_address": "i1_10",
    "clinical.symptoms": "i1_11",
    "clinical.symptoms_other": "i1_11_1",
    "tests": "i1_12",
    "tests.method": "i1_12_1",
    "tests.specimen": "i1_12_2",
    "tests.collection_date": "i1_12_3",
    "tests.result": "i1_12_4",
    "tests.result_date": "i1_12_5",
    "clinical.first_visit_date": "i1_13",
    "clinical.diagnosis_date": "i1_14",
    "clinical.estimated_infection_date": "i1_15",
    "clinical.onset_date": "i1_16",
    "clinical.death_date": "i1_17",
    "infection.route": "i1_18",
    "infection.route_detail": "i1_18_1",
    "infection.region": "i1_18_2",
    "infection.prefecture": "i1_18_3",
    "infection.country": "i1_18_4",
    "notes.remarks": "i1_19",
    "risk.factors": "i2_1",
    "risk.factors_other": "i2_1_1",
    "vaccination.status": "i2_2",
    "vaccination.doses": "i2_2_1",
    "vaccination.last_date": "i2_2_2",
    "vaccination.vaccine": "i2_2_3",
    "care.hospitalized": "i2_3",
    "care.admission_date": "i2_3_1",
    "care.discharge_date": "i2_3_2",
    "care.severity": "i2_4",
    "care.icu": "i2_4_1",
    "care.ventilator": "i2_4_2",
    "care.ecmo": "i2_4_3",
}

#: Display conditions added to catalog items (the catalogs have none): detail fields follow their parent.
VISIBLE_WHEN: dict[str, dict[str, Any]] = {
    "clinical.symptoms_other": {"item": "clinical.symptoms", "includes": "other"},
    "risk.factors_other": {"item": "risk.factors", "includes": "other"},
    "infection.prefecture": {"item": "infection.region", "eq": "domestic"},
    "infection.country": {"item": "infection.region", "eq": "overseas"},
    "vaccination.doses": {"item": "vaccination.status", "eq": "yes"},
    "vaccination.last_date": {"item": "vaccination.status", "eq": "yes"},
    "vaccination.vaccine": {"item": "vaccination.status", "eq": "yes"},
    "care.admission_date": {"not": {"item": "care.hospitalized", "eq": "no"}},
    "care.discharge_date": {"not": {"item": "care.hospitalized", "eq": "no"}},
}

#: Per-item extras the catalogs do not carry.
ITEM_EXTRAS: dict[str, dict[str, Any]] = {
    "vaccination.doses": {"min": 0, "max": 10},
    "notes.remarks": {"max_length": 4000},
    "clinical.symptoms_other": {"max_length": 2000},
    "infection.route_detail": {"max_length": 2000},
    "risk.factors_other": {"max_length": 2000},
}

_DATE_ORDER_MSG = "「{a}」は「{b}」と同じ日かそれより前の日付にしてください。"

RuleBuilder = Callable[[dict[str, Any]], list[dict[str, Any]]]


def _date_items(catalog: dict[str, Any]) -> list[str]:
    return [i["id"] for i in catalog.get("items", []) if i.get("type") == "date"]


def _rule(rid: str, kind: str, params: dict[str, Any], severity: str, message: str) -> dict[str, Any]:
    return {"id": rid, "kind": kind, "params": params, "severity": severity, "message": message}


def _order(rid: str, *chain: Any) -> RuleBuilder:
    return lambda _c: [_rule(rid, "date_order", {"chain": list(chain)}, "error", _DATE_ORDER_MSG)]


def _all_dates(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    dates = _date_items(catalog)
    others = [d for d in dates if d != "patient.birth_date"]
    return [
        _rule("dates.not_future", "date_order", {"chain": [dates, TODAY]}, "error",
              "「{a}」が未来の日付になっています（今日以前の日付にしてください）。"),
        _rule("dates.after_birth", "date_order", {"chain": [["patient.birth_date"], others]}, "error",
              "「{b}」が生年月日より前の日付になっています。"),
    ]


_TARGET = "report.notification_target"

#: The known English rule texts of the catalogs and their structured form. A new text needs a new entry here
#: (and test cases in tests/formengine/test_rules.py) before the catalog can be loaded.
RULE_TABLE: dict[str, RuleBuilder] = {
    "all dates <= today; patient.birth_date <= every other date": _all_dates,
    "clinical.onset_date <= clinical.diagnosis_date <= report.report_date": _order(
        "dates.onset_diagnosis_report", "clinical.onset_date", "clinical.diagnosis_date", "report.report_date"),
    "clinical.first_visit_date <= clinical.diagnosis_date": _order(
        "dates.first_visit_diagnosis", "clinical.first_visit_date", "clinical.diagnosis_date"),
    "tests.collection_date <= tests.result_date (each test)": _order(
        "tests.collection_before_result", "tests.collection_date", "tests.result_date"),
    "care.admission_date <= care.discharge_date": _order(
        "care.admission_before_discharge", "care.admission_date", "care.discharge_date"),
    "report.diagnosis_class in (dead_confirmed, dead_suspected) => clinical.death_date required": lambda _c: [
        _rule("death_date.required_if_dead", "required_if",
              {"when": {"item": "report.diagnosis_class", "in": ["dead_confirmed", "dead_suspected"]},
               "items": ["clinical.death_date"]},
              "error", "類型が死体の場合、「{label}」は必須です。")],
    "report.diagnosis_class = confirmed_patient => at least one test with result positive, or method = clinical":
        lambda _c: [_rule(
            "confirmed.needs_positive_test", "at_least_one",
            {"when": {"item": "report.diagnosis_class", "eq": "confirmed_patient"}, "group": "tests",
             "where": {"or": [{"item": "tests.result", "eq": "positive"}, {"item": "tests.method", "eq": "clinical"}]},
             "item": "tests.result"},
            "error",
            "類型が「患者（確定例）」の場合、陽性の検査結果が少なくとも1件（または検査方法「臨床決定」）必要です。")],
    "care.severity = severe <=> at least one of care.icu, care.ventilator, care.ecmo = yes (warn if inconsistent)":
        lambda _c: [_rule(
            "care.severity_consistency", "consistency_warning",
            {"when": {"not": {"item": "care.severity", "empty": True}},
             "left": {"item": "care.severity", "eq": "severe"},
             "right": {"or": [{"item": "care.icu", "eq": "yes"}, {"item": "care.ventilator", "eq": "yes"},
                              {"item": "care.ecmo", "eq": "yes"}]},
             "relation": "iff", "item": "care.severity"},
            "warning",
            "重症度「重症」とICU・人工呼吸器・ECMO（いずれかが「有」）の記載が一致していません。確認してください。")],
    "patient.age < 18 => patient.guardian_name expected (warning, not blocking)": lambda _c: [_rule(
        "patient.guardian_expected_if_minor", "expected_if",
        {"when": {"item": "patient.age", "lt": 18}, "items": ["patient.guardian_name"]},
        "warning", "18歳未満の場合は「{label}」を入力してください。")],
    "patient.age is derived from patient.birth_date and clinical.diagnosis_date (months when < 1 year)":
        lambda _c: [_rule(
            "patient.age_derived", "derive",
            {"target": "patient.age", "function": "age_at", "from": "patient.birth_date", "at": "clinical.diagnosis_date"},
            "error", "生年月日が診断日より後のため、診断時の年齢を計算できません。日付を確認してください。")],
    "at most 4 tests per notification (Q&A 6)": lambda _c: [_rule(
        "tests.max_4", "max_repeat", {"group": "tests", "max": 4}, "error",
        "検査は1件の届出につき最大{max}件までです（現在{count}件）。")],
    "report.notification_target empty => the case is not notifiable: the form says so and does not forward it":
        lambda _c: [_rule(
            "target.not_notifiable_if_empty", "not_notifiable_if_empty", {"item": _TARGET}, "error",
            "発生届の対象（65歳以上の者・入院を要する者・重症化リスクがあり治療薬等が必要な者・妊婦）のいずれにも"
            "該当しないため、発生届の対象外です。HER-SYSへは送信されません。")],
    "patient.age >= 65 => report.notification_target includes age65_plus (pre-filled)": lambda _c: [_rule(
        "target.suggest_age65", "suggest",
        {"when": {"item": "patient.age", "gte": 65}, "item": _TARGET, "value": "age65_plus", "mode": "prefill"},
        "warning", "診断時65歳以上のため「65歳以上の者」を選択しました。確認してください。")],
    "care.hospitalized = yes => report.notification_target includes hospitalization_required (suggested)":
        lambda _c: [_rule(
            "target.suggest_hospitalized", "suggest",
            {"when": {"item": "care.hospitalized", "eq": "yes"}, "item": _TARGET,
             "value": "hospitalization_required", "mode": "suggest"},
            "warning", "入院ありのため「入院を要する者」に該当する可能性があります。確認してください。")],
    "risk.factors includes pregnancy => report.notification_target includes pregnant (suggested)": lambda _c: [
        _rule("target.suggest_pregnant", "suggest",
              {"when": {"item": "risk.factors", "includes": "pregnancy"}, "item": _TARGET, "value": "pregnant",
               "mode": "suggest"},
              "warning", "重症化リスク因子に「妊娠」があるため「妊婦」に該当する可能性があります。確認してください。")],
}


def _hersys_path(item_id: str, group: str | None) -> str:
    # The HER-SYS WebAPI spec is confidential; the path names the item in the payload structure we send
    # (JSON Pointer; "*" = every row of a repeat group). Replace per item when the real spec is available.
    if group:
        return f"/{group}/*/{item_id.split('.', 1)[1]}"
    return "/" + item_id.replace(".", "/")


def _catalog_item(raw: dict[str, Any], group_ids: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise DefinitionError(f"カタログの項目が不正です：{str(raw)[:80]}")
    iid = raw["id"]
    prefix = iid.split(".", 1)[0]
    group = prefix if raw.get("repeat") and prefix in group_ids else None
    item: dict[str, Any] = {
        "id": iid,
        "label": raw.get("label") or iid,
        "type": raw.get("type"),
        "section": raw.get("section"),
    }
    if group:
        item["group"] = group
    if raw.get("values") is not None:
        item["values"] = [{"code": v["code"], "label": v["label"]} for v in raw["values"]]
    for flag in ("required", "priority", "medical_judgement"):
        item[flag] = bool(raw.get(flag, False))
    if iid in VISIBLE_WHEN:
        item["visible_when"] = copy.deepcopy(VISIBLE_WHEN[iid])
    if raw.get("note"):
        item["help"] = raw["note"]
    if raw.get("emr_source"):
        item["emr_source"] = raw["emr_source"]
    item["hersys_path"] = _hersys_path(iid, group)
    item["link_id"] = LINK_IDS.get(iid, iid)
    item.update(copy.deepcopy(ITEM_EXTRAS.get(iid, {})))
    return item


def load_catalog(catalog: dict[str, Any]) -> dict[str, Any]:
    """Convert a HER-SYS item catalog (``items-YYYY-MM.json``) into a validated form definition.

    Every catalog rule text must be in RULE_TABLE; an unknown one raises DefinitionError naming it.
    """
    if not isinstance(catalog, dict) or not isinstance(catalog.get("items"), list):
        raise DefinitionError("カタログの形式が正しくありません（items がありません）。")
    version = str(catalog.get("version") or "")
    sections = [{"id": s["id"], "label": s["label"]} for s in catalog.get("sections", [])]
    repeats: dict[str, int] = {}
    for raw in catalog["items"]:
        if isinstance(raw, dict) and raw.get("repeat") and isinstance(raw.get("id"), str) and "." in raw["id"]:
            prefix = raw["id"].split(".", 1)[0]
            repeats[prefix] = max(repeats.get(prefix, 0), int(raw["repeat"]))
    section_labels = {s["id"]: s["label"] for s in sections}
    groups = [
        {"id": gid, "label": re.sub(r"（[^）]*）$", "", section_labels.get(gid, gid)) or gid, "section": gid,
         "max": count,
         "link_id": LINK_IDS.get(gid, gid)}
        for gid, count in repeats.items()
    ]
    items = [_catalog_item(raw, set(repeats)) for raw in catalog["items"]]
    rules: list[dict[str, Any]] = []
    unknown: list[str] = []
    for text in catalog.get("rules", []):
        builder = RULE_TABLE.get(text)
        if builder is None:
            unknown.append(str(text))
            continue
        for rule in builder(catalog):
            rule["source"] = text
            rules.append(rule)
    if unknown:
        raise DefinitionError(
            "カタログに未対応のルールがあります（formengine.definition.RULE_TABLE に構造化ルールを追加してください）："
            + " / ".join(f"「{t[:200]}」" for t in unknown),
            [f"未対応のルール：{t}" for t in unknown],
        )
    defn = {
        "format": FORMAT,
        "catalog": str(catalog.get("catalog", "")),
        "disease": str(catalog.get("disease", "")),
        "version": version,
        "title": f"{catalog.get('disease', '')} 発生届（HER-SYS 項目セット {version}）".strip(),
        "sections": sections,
        "groups": groups,
        "items": items,
        "rules": rules,
        "changes_from_previous": list(catalog.get("changes_from_previous", [])),
    }
    return ensure_valid(defn)


def builtin_catalog(version: str) -> dict[str, Any]:
    """The catalog shipped with the product in the ``vocabulary`` package (the shared folder is never read at
    run time)."""
    if version not in BUILTIN_VERSIONS:
        raise DefinitionError(f"組み込みの項目カタログ「{version}」はありません（{'、'.join(BUILTIN_VERSIONS)}）。")
    return copy.deepcopy(_builtin_catalog(version))


@lru_cache(maxsize=len(BUILTIN_VERSIONS))
def _builtin_catalog(version: str) -> dict[str, Any]:
    return vocabulary.catalog(version)


def builtin_definition(version: str) -> dict[str, Any]:
    """The definition built from a shipped catalog (a fresh copy each call)."""
    return copy.deepcopy(_builtin_definition(version))


@lru_cache(maxsize=len(BUILTIN_VERSIONS))
def _builtin_definition(version: str) -> dict[str, Any]:
    return load_catalog(builtin_catalog(version))
