"""Template-ready model of a form: definition + evaluation + provenance → plain dicts and lists.

The Django template only loops and prints (autoescaped); every decision — widget, options, badge, highlight,
visibility, messages — is taken here. Shape::

    {"title", "version", "stage", "notifiable", "ok_to_confirm",
     "counts": {"errors", "warnings", "infos"},
     "messages": [message], "missing_required": [{"id", "label", "html_id"}],
     "missing_priority": [{"id", "label", "html_id"}],
     "suggestions": {...},
     "sections": [{"id", "label", "help", "html_id", "has_errors", "entries": [field | group]}]}

    field = {"kind": "field", "id", "name", "html_id", "label", "type", "widget", "input": {...},
             "options": [{"code", "label", "selected"}], "value": str, "values": [str], "unit", "unit_options",
             "display" (dates: 2021年1月10日), "understood" (dates: 2021年1月10日（令和3年）), "has_value", "provenance": {"kind", "label_ja", "detail"}, "required", "priority",
             "medical_judgement", "highlight", "visible", "visible_when", "hidden_with_value", "messages",
             "has_error", "help", "emr_source", "link_id", "suggestion", "derived"}
    group = {"kind": "group", "id", "label", "max", "html_id", "columns": [{"id", "key", "label", "type",
             "required", "priority"}], "rows": [{"index", "filled", "cells": [field]}], "filled_count",
             "messages", "has_error", "highlight"}

    message = {"item_id", "row", "rule_id", "severity", "text_ja"}

Form field names (what parse_form_input reads back): ``<item id>`` (multi_enum: repeated), the age unit as
``<item id>__unit``, repeat-group cells as ``<group>-<row>-<key>`` (e.g. ``tests-0-method``).
"""
from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from jpinput import address_mismatch, format_date_ja, format_date_ja_with_era, normalise_postal
from vocabulary import ids

from .definition import groups_by_id, row_key
from .engine import COMPLETENESS, Evaluation, Message
from .valuetypes import (
    AGE_UNIT_LABELS,
    DEFAULT_MAX_LENGTH,
    age_label,
    options_of,
    parse_iso_date,
)

PROVENANCE_KINDS = {
    "emr": "電子カルテ",
    "master": "医療機関マスタ",
    "computed": "自動計算",
    "typed": "入力",
    "adopted": "候補から採用",
    "none": "未入力",
}
_EMR_PREFIXES = ("ss-mix2", "ssmix2", "fhir", "csv", "dwh", "emr", "hl7")

_INPUT_HINTS: dict[str, dict[str, Any]] = {
    "text": {"type": "text"},
    "kana": {"type": "text", "lang": "ja", "placeholder": "カタカナ"},
    # One text box per date (one Tab stop): every form jpinput.dates reads (2021/1/10, 20210110, R3.1.10, 令和3年1月10日,
    # full-width digits) is understood; the page shows what it understood as one types (/input/date).
    "date": {"type": "text", "inputmode": "numeric", "autocomplete": "off", "placeholder": "例 2021/1/10、R3.1.10"},
    "integer": {"type": "number", "inputmode": "numeric", "step": 1},
    "phone": {"type": "tel", "inputmode": "tel", "autocomplete": "off", "placeholder": "03-1234-5678"},
    "postal_code": {"type": "text", "inputmode": "numeric", "placeholder": "100-0001"},
    "age": {"type": "number", "inputmode": "numeric", "step": 1},
}


def provenance_badge(source: Any, has_value: bool, defn: dict[str, Any] | None = None) -> dict[str, str]:
    """{kind: emr|master|computed|typed|adopted|none, label_ja, detail, detail_ja} for one value's provenance string.
    ``detail`` is the stored string (``ss-mix2:ADT-00 PID-5``); ``detail_ja`` says it in words for the people
    filling the form (「SS-MIX2 患者基本情報（ADT-00）の氏名（PID-5）」)."""
    if not has_value:
        return {"kind": "none", "label_ja": PROVENANCE_KINDS["none"], "detail": "", "detail_ja": ""}
    if not isinstance(source, str) or not source:
        return {"kind": "typed", "label_ja": PROVENANCE_KINDS["typed"], "detail": "", "detail_ja": ""}
    prefix = source.split(":", 1)[0].lower()
    if prefix in _EMR_PREFIXES:
        kind = "emr"
    elif prefix in ("master", "computed", "typed", "adopted"):
        kind = prefix
    else:
        kind = "typed"
    return {"kind": kind, "label_ja": PROVENANCE_KINDS[kind], "detail": source[:200],
            "detail_ja": provenance_in_words(source, defn)[:200]}


#: SS-MIX2 standard storage data types and HL7 v2.5 fields the mapping cites, in words.
_SSMIX2_TYPES = {"ADT-00": "患者基本情報", "ADT-12": "外来受診", "ADT-22": "入院", "ADT-52": "退院",
                 "PPR-01": "病名", "OML-01": "検体検査オーダー", "OML-11": "検体検査結果", "OMP-01": "処方"}
_HL7_FIELDS = {"PID-5": "氏名", "PID-7": "生年月日", "PID-8": "性別", "PID-11": "住所", "PID-11.5": "郵便番号",
               "PID-13": "電話番号", "PV1-2": "患者区分", "PV1-7": "担当医", "PV1-44": "受診・入院日",
               "PRB-3": "病名", "PRB-7": "診断日", "OBX-3": "検査項目", "OBX-5": "検査結果", "OBX-19": "結果日",
               "SPM-4": "検体", "SPM-17": "採取日時"}
_COMPUTED = {"today": "届出を開いた日の日付", "first_report_of_class": "この類型を最初に報告した日"}


def provenance_in_words(source: str, defn: dict[str, Any] | None = None) -> str:
    """A provenance string in Japanese words; an unknown form is shown as it is."""
    prefix, _, rest = source.partition(":")
    prefix = prefix.lower()
    if prefix in ("ss-mix2", "ssmix2", "hl7"):
        parts = rest.split()
        kind = _SSMIX2_TYPES.get(parts[0], "") if parts else ""
        fields = [f"{_HL7_FIELDS[p]}（{p}）" if p in _HL7_FIELDS else p for p in parts[1:]]
        head = f"SS-MIX2 {kind}（{parts[0]}）" if kind else f"SS-MIX2 {parts[0] if parts else ''}".rstrip()
        return f"電子カルテ：{head}" + (f"の{'、'.join(fields)}" if fields else "")
    if prefix == "fhir":
        return f"電子カルテ：FHIR {rest}"
    if prefix in ("csv", "dwh"):
        return f"電子カルテ：DWH出力の列 {rest}"
    if prefix == "emr":
        return f"電子カルテ：{rest}"
    if prefix == "master":
        return "医療機関マスタ（施設情報）" if rest == "facility" else f"医療機関マスタ（{rest}）"
    if prefix == "typed":
        return f"入力した人：{rest}" if rest else "入力"
    if prefix == "adopted":  # adopted:<user>:<source> — a suggestion a person chose with 「採用」
        user, _, origin = rest.partition(":")
        head, _, detail = origin.partition(":")
        where = {"ss-mix2": "SS-MIX2", "ssmix2": "SS-MIX2", "fhir": "FHIR", "csv": "DWH出力"}.get(head.lower(), head)
        if detail == "positive-test":
            where += "の陽性の検査結果"
        return f"電子カルテの候補（{where}）を{user}が採用" if where else f"電子カルテの候補を{user}が採用"
    if prefix == "computed":
        if rest in _COMPUTED:
            return _COMPUTED[rest]
        rule = next((r for r in (defn or {}).get("rules", []) if r.get("id") == rest), None)
        labels = {i["id"]: i["label"] for i in (defn or {}).get("items", [])}
        if rule and rule.get("kind") == "derive":
            p = rule.get("params", {})
            return f"「{labels.get(p.get('from'), p.get('from'))}」と「{labels.get(p.get('at'), p.get('at'))}」から計算"
        if rule and rule.get("kind") == "suggest":
            return f"自動選択：{rule.get('message', '')}".replace("{", "").replace("}", "")
        return "自動計算"
    return source


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, date)):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:2000]
    except (TypeError, ValueError):
        return repr(value)[:2000]


def _widget(item: dict[str, Any]) -> str:
    item_type = item["type"]
    if item_type == "enum":
        return "radio" if len(options_of(item)) <= 4 else "select"
    if item_type == "multi_enum":
        return "checkboxes"
    if item_type == "prefecture":
        return "select"
    if item_type == "text":
        return "textarea" if item.get("max_length", 0) > 200 else "text"
    return {"kana": "kana", "date": "date", "integer": "number", "phone": "tel", "postal_code": "postal",
            "age": "age"}.get(item_type, "text")


def _field(item: dict[str, Any], value: Any, *, name: str, html_id: str, source: Any, messages: list[Message],
           evaluation: Evaluation, derived: bool, highlight: bool, visible: bool,
           defn: dict[str, Any] | None = None) -> dict[str, Any]:
    item_type = item["type"]
    has_value = value is not None and value != "" and value != []
    options = options_of(item)
    selected: list[str] = []
    if item_type == "multi_enum" and isinstance(value, list):
        selected = [v for v in value if isinstance(v, str)]
    elif item_type in ("enum", "prefecture") and isinstance(value, str):
        selected = [value]
    labels = dict(options)
    unit = "years"
    text_value = _text(value)
    display = text_value
    understood = ""
    if item_type == "age":
        if isinstance(value, dict):
            unit = value.get("unit") if value.get("unit") in AGE_UNIT_LABELS else "years"
            text_value = _text(value.get("value"))
            display = age_label(value) or text_value
    elif item_type in ("enum", "prefecture"):
        display = labels.get(value, text_value) if isinstance(value, str) else text_value
    elif item_type == "postal_code" and isinstance(value, str):
        display = normalise_postal(value) or value  # 123-4567, whether typed or from the EMR
    elif item_type == "date" and (parsed := parse_iso_date(value)) is not None:
        display = format_date_ja(parsed)  # 2021年1月10日 on screens and print
        understood = format_date_ja_with_era(parsed)  # 2021年1月10日（令和3年） under the box
    elif item_type == "multi_enum":
        display = "、".join(labels.get(v, v) if isinstance(v, str) else _text(v) for v in value) \
            if isinstance(value, list) else text_value
    input_hints = dict(_INPUT_HINTS.get(item_type, {"type": "text"}))
    limit = item.get("max_length") or (DEFAULT_MAX_LENGTH.get(item_type) if item_type in ("text", "kana") else None)
    if limit:
        # Never an HTML maxlength (the browser would cut a paste silently): the page counts, the server says so.
        input_hints["maxlength"] = limit
    if item_type == "integer":
        input_hints.update({k: item[k] for k in ("min", "max") if k in item})
    msg_dicts = [m.as_dict() for m in _shown(messages, evaluation.stage, defn)]
    return {
        "kind": "field",
        "id": item["id"],
        "name": name,
        "html_id": html_id,
        "label": item["label"],
        "type": item_type,
        "widget": _widget(item),
        "input": input_hints,
        "options": [{"code": c, "label": label, "selected": c in selected} for c, label in options],
        "value": "" if item_type == "multi_enum" else text_value,
        "values": selected if item_type == "multi_enum" else ([text_value] if has_value else []),
        "unit": unit,
        "unit_options": [{"code": c, "label": label, "selected": c == unit} for c, label in AGE_UNIT_LABELS.items()]
        if item_type == "age" else [],
        "display": display,
        "understood": understood,
        "has_value": has_value,
        "provenance": provenance_badge(source, has_value, defn),
        "required": bool(item.get("required")),
        "priority": bool(item.get("priority")),
        "medical_judgement": bool(item.get("medical_judgement")),
        "highlight": highlight,
        # A hidden item that holds a value stays on screen (with its warning): nothing disappears silently.
        "visible": visible or has_value,
        "visible_when": item.get("visible_when"),
        "visible_when_json": json.dumps(item["visible_when"], ensure_ascii=False) if item.get("visible_when") else "",
        "hidden_with_value": (not visible) and has_value,
        "messages": msg_dicts,
        "has_error": any(m["severity"] == "error" for m in msg_dicts),
        "help": item.get("help", ""),
        "emr_source": item.get("emr_source", ""),
        "link_id": item.get("link_id", item["id"]),
        "suggestion": evaluation.suggestions.get(item["id"]),
        "derived": derived,
    }


def _completeness_rules(defn: dict[str, Any] | None) -> set[str]:
    ids = {r.get("id") for r in (defn or {}).get("rules", []) if r.get("kind") in COMPLETENESS}
    return ids | {"item.required"}


def _shown(messages: list[Message], stage: str, defn: dict[str, Any] | None) -> list[Message]:
    """The messages shown under an item. While drafting, "…は必須です" and the like (completeness, demoted to
    info by the engine) are not shown: a fresh form says 未入力 neutrally (badge and progress) until someone
    tries to confirm; then (stage "confirm") they are errors under their items."""
    if stage == "confirm":
        return list(messages)
    completeness = _completeness_rules(defn)
    return [m for m in messages if not (m.severity == "info" and m.rule_id in completeness)]


def _echoes(defn: dict[str, Any], evaluation: Evaluation) -> dict[tuple[str, int | None], list[Message]]:
    """Messages that concern two items sit under both. The engine anchors a date-order error on one of the two
    dates (「発病年月日」は「診断年月日」と同じ日かそれより前… under 診断年月日) and an age it cannot derive on the age;
    the person may have to change the other one, so it is shown there too (the summary lists it once)."""
    rules = {r.get("id"): r for r in defn.get("rules", [])}
    items = {i["id"]: i for i in defn.get("items", []) if isinstance(i, dict) and "id" in i}
    out: dict[tuple[str, int | None], list[Message]] = {}
    for m in evaluation.messages:
        rule = rules.get(m.rule_id)
        if rule is None or m.item_id not in items:
            continue
        if rule.get("kind") == "derive":
            refs = [rule["params"].get("from"), rule["params"].get("at")]
        elif rule.get("kind") == "date_order":
            refs = [r for level in rule["params"].get("chain", []) for r in (level if isinstance(level, list) else [level])
                    if r in items and f"「{items[r]['label']}」" in m.text_ja]
        else:
            continue
        for ref in refs:
            if ref == m.item_id or ref not in items:
                continue
            group = items[ref].get("group")
            if group and (m.row is None or items[m.item_id].get("group") != group):
                continue
            out.setdefault((ref, m.row if group else None), []).append(m)
    return out


#: The patient header: which items, with a short label (the form's own labels are long).
HEADER_ITEMS = ((ids.PATIENT_SEX, "性別"), (ids.PATIENT_BIRTH_DATE, "生年月日"), (ids.PATIENT_AGE, "年齢"))


def render_model(defn: dict[str, Any], evaluation: Evaluation, provenance: dict[str, Any] | None) -> dict[str, Any]:
    """Build the template model. ``provenance`` maps item id (``tests[0].method`` for rows) → source string;
    values the evaluation derived are shown as 自動計算 whatever the stored provenance says."""
    provenance = provenance if isinstance(provenance, dict) else {}
    values = evaluation.values
    hidden = set(evaluation.hidden)
    missing_priority = set(evaluation.missing_priority)
    groups = groups_by_id(defn)
    items = defn.get("items", [])
    labels = {item["id"]: item["label"] for item in items}
    # Where a "missing" link should jump: the field, or the repeat group's box.
    anchors = {item["id"]: ("group-" + item["group"]) if item.get("group") else "f-" + item["id"].replace(".", "-")
               for item in items}
    echoes = _echoes(defn, evaluation)

    def source_of(key: str) -> Any:
        return evaluation.derived.get(key) or provenance.get(key)

    sections: list[dict[str, Any]] = []
    for section in defn.get("sections", []):
        entries: list[dict[str, Any]] = []
        done_groups: set[str] = set()
        for item in items:
            if item.get("section") != section["id"]:
                continue
            gid = item.get("group")
            if gid:
                if gid not in done_groups and gid in groups:
                    done_groups.add(gid)
                    entries.append(_group(defn, groups[gid], evaluation, provenance, missing_priority, echoes))
                continue
            iid = item["id"]
            value = values.get(iid)
            visible = iid not in hidden
            field = _field(
                item, value, name=iid, html_id="f-" + iid.replace(".", "-"),
                source=source_of(iid), messages=evaluation.messages_for(iid, None) + echoes.get((iid, None), []),
                evaluation=evaluation,
                derived=iid in evaluation.derived,
                highlight=visible and iid in missing_priority, visible=visible, defn=defn,
            )
            entries.append(field)
        has_errors = any(e.get("has_error") for e in entries)
        sections.append({"id": section["id"], "label": section["label"], "help": section.get("help", ""),
                         "html_id": "section-" + section["id"], "has_errors": has_errors, "entries": entries})

    _pair_postal_codes(defn, sections)
    form_messages = [m.as_dict() for m in _shown([m for m in evaluation.messages if m.item_id is None],
                                                 evaluation.stage, defn)]
    model = {
        "title": defn.get("title", ""),
        "version": defn.get("version", ""),
        "stage": evaluation.stage,
        "notifiable": evaluation.notifiable,
        "ok_to_confirm": evaluation.ok_to_confirm,
        "counts": {"errors": len(evaluation.errors), "warnings": len(evaluation.warnings),
                   "infos": len(evaluation.infos)},
        "messages": form_messages,
        "missing_required": [{"id": i, "label": labels.get(i, i), "html_id": anchors.get(i, "")}
                             for i in evaluation.missing_required],
        "missing_priority": [{"id": i, "label": labels.get(i, i), "html_id": anchors.get(i, "")}
                             for i in evaluation.missing_priority],
        "suggestions": evaluation.suggestions,
        "sections": sections,
    }
    model["header"] = _header(defn, sections)
    model["summary"] = _summary(sections, form_messages)
    model["progress"] = _progress(model)
    return model


def _iter_fields(sections: list[dict[str, Any]]):
    for section in sections:
        for entry in section["entries"]:
            if entry["kind"] == "field":
                yield section, entry
            else:
                for row in entry["rows"]:
                    for cell in row["cells"]:
                        yield section, cell


def _header(defn: dict[str, Any], sections: list[dict[str, Any]]) -> dict[str, Any]:
    """Who this is, at a glance: name, kana, sex, birth date (with the era), age, and the form version."""
    fields = {f["id"]: f for _, f in _iter_fields(sections) if f["name"] == f["id"]}

    def shown(iid: str) -> str:
        f = fields.get(iid)
        return f["display"] if f and f["has_value"] else ""

    facts = []
    for iid, short in HEADER_ITEMS:
        if iid in fields:
            f = fields[iid]
            text = (f["understood"] or f["display"]) if f["has_value"] else "未入力"
            facts.append({"label": short, "value": text, "html_id": f["html_id"], "missing": not f["has_value"]})
    return {"name": shown(ids.PATIENT_NAME), "kana": shown(ids.PATIENT_NAME_KANA), "facts": facts,
            "version": defn.get("version", ""), "title": defn.get("title", "")}


def _summary(sections: list[dict[str, Any]], form_messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The error summary at the top of the page: every error shown on it, with a link to the item it sits under
    (the same messages, so the summary and the items never disagree), and the warnings counted apart."""
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for m in form_messages:
        (errors if m["severity"] == "error" else warnings if m["severity"] == "warning" else []).append(
            {"html_id": "", "label": "", "text_ja": m["text_ja"]})
    for section in sections:
        for entry in section["entries"]:
            if entry["kind"] == "group":
                for m in entry["messages"]:
                    target = errors if m["severity"] == "error" else warnings if m["severity"] == "warning" else None
                    if target is not None:
                        target.append({"html_id": entry["html_id"], "label": entry["label"], "text_ja": m["text_ja"]})
                cells = [c for r in entry["rows"] for c in r["cells"]]
            else:
                cells = [entry]
            for f in cells:
                if not f["visible"]:
                    continue
                for m in f["messages"]:
                    target = errors if m["severity"] == "error" else warnings if m["severity"] == "warning" else None
                    key = (m["rule_id"], m["row"], m["text_ja"])  # a message shown under two items: listed once
                    if target is not None and key not in seen:
                        seen.add(key)
                        target.append({"html_id": f["html_id"], "label": f["label"], "text_ja": m["text_ja"]})
    return {"errors": errors, "warnings": warnings, "error_count": len(errors), "warning_count": len(warnings)}


def _progress(model: dict[str, Any]) -> dict[str, Any]:
    """Complete / missing priority / messages: items shown that hold a value (a repeat group counts once, when it
    has a row), the priority items still missing (Q&A 5), and the counts of errors and warnings on the page."""
    total = filled = 0
    for section in model["sections"]:
        for entry in section["entries"]:
            if entry["kind"] == "group":
                total += 1
                filled += 1 if entry["filled_count"] else 0
            elif entry["visible"]:
                total += 1
                filled += 1 if entry["has_value"] else 0
    summary = model["summary"]
    return {"filled": filled, "total": total, "percent": round(100 * filled / total) if total else 100,
            "missing_priority": model["missing_priority"],
            "missing_required": model["missing_required"] if model["stage"] == "confirm" else [],
            "errors": summary["error_count"], "warnings": summary["warning_count"],
            "first_error": summary["errors"][0]["html_id"] if summary["errors"] else "",
            "first_warning": summary["warnings"][0]["html_id"] if summary["warnings"] else "",
            "sections": [{"label": s["label"], "html_id": s["html_id"], "has_errors": s["has_errors"]}
                         for s in model["sections"]]}


def _pair_postal_codes(defn: dict[str, Any], sections: list[dict[str, Any]]) -> None:
    """A postal code and its address (``<prefix>.postal_code`` → ``<prefix>.address``, or the item the postal code
    names in ``address_item``) know each other on the page (the code fills the address), and a code that does not
    belong to the address is a warning under both — never an error: the code or the address may be the one that
    is wrong (jpinput.address_mismatch)."""
    fields = {f["id"]: f for s in sections for f in s["entries"] if f["kind"] == "field"}
    for item in defn.get("items", []):
        if item.get("type") != "postal_code" or item.get("group") or item["id"] not in fields:
            continue
        address_id = item.get("address_item") or item["id"].rsplit(".", 1)[0] + ".address"
        code, address = fields[item["id"]], fields.get(address_id)
        if address is None or address["type"] != "text":
            continue
        code["address_for"], address["postal_for"] = address["html_id"], code["html_id"]
        if not (code["has_value"] and address["has_value"]):
            continue
        warning = address_mismatch(code["value"], address["value"])
        if warning:
            for field in (code, address):
                field["messages"].append({"item_id": field["id"], "row": None, "rule_id": "postal.address_mismatch",
                                          "severity": "warning", "text_ja": warning})
    # A residence (居所) is most often the address itself: one click copies it (``copy_from`` names the item).
    for item in defn.get("items", []):
        if item.get("type") != "text" or item.get("group") or item["id"] not in fields:
            continue
        source_id = item.get("copy_from") or (item["id"].rsplit(".", 1)[0] + ".address"
                                               if item["id"].endswith(".residence_address") else None)
        source = fields.get(source_id or "")
        if source is not None and source["type"] == "text":
            fields[item["id"]]["copy_from"] = source["html_id"]
            fields[item["id"]]["copy_from_label"] = source["label"]


_IDS = re.compile(r"（[A-Za-z0-9_.\-]+）")
_PLACEHOLDER = re.compile(r"\{\w+\}")


def _rule_text(rule: dict[str, Any], defn: dict[str, Any]) -> str:
    """A rule's message with its placeholders filled from the definition (labels, not ids)."""
    labels = {i["id"]: i["label"] for i in defn.get("items", []) if isinstance(i, dict) and "id" in i}
    p = rule.get("params") or {}
    names: dict[str, Any] = {"label": "該当する項目", "a": "前の日付", "b": "後の日付", "max": p.get("max", ""),
                             "count": "入力された件数"}
    if isinstance(p.get("items"), list) and p["items"]:
        names["label"] = "・".join(f"{labels.get(i, i)}" for i in p["items"])
    return re.sub(r"\{(\w+)\}", lambda m: str(names.get(m.group(1), "")), str(rule.get("message", "")))


def change_notice(report: Any, defn: dict[str, Any]) -> list[str]:
    """A stored migration report (``formengine.migrate_values``, as JSON) told to the people filling the form in
    plain Japanese: item labels instead of ids, checks by what they say instead of rule ids. ``defn`` is the
    definition the draft moved to."""
    if not isinstance(report, dict):
        return []
    rules = {r.get("id"): r for r in defn.get("rules", []) if isinstance(r, dict)}
    kinds = {"suggest": "自動選択・候補", "derive": "自動計算"}
    lines: list[str] = []
    for change in report.get("changes") or []:
        if not isinstance(change, dict):
            continue
        kind, target, text = change.get("kind", ""), change.get("target", ""), str(change.get("text_ja", ""))
        if kind == "definition_changed":
            continue
        if kind in ("rule_added", "rule_changed") and target in rules:
            rule = rules[target]
            what = kinds.get(rule.get("kind"), "入力の確認")
            verb = "が加わりました" if kind == "rule_added" else "が変わりました"
            lines.append(f"{what}{verb}：{_rule_text(rule, defn)}")
        elif kind.startswith("rule_"):
            message = _PLACEHOLDER.sub("", text.split("：", 1)[1]) if "：" in text else ""
            verb = {"rule_added": "入力の確認が加わりました", "rule_changed": "入力の確認が変わりました"}.get(
                kind, "入力の確認がひとつなくなりました")
            lines.append(verb + (f"：{message}" if message else "。"))
        elif kind == "item_added":
            label = _IDS.sub("", text.removeprefix("項目").split("を追加", 1)[0])
            required = "（必須）" if (change.get("details") or {}).get("required") else ""
            lines.append(f"項目{label}が加わりました{required}。")
        elif kind == "item_removed":
            label = _IDS.sub("", text.removeprefix("項目").split("を削除", 1)[0])
            lines.append(f"項目{label}がなくなりました（入力済みの値は送信されません）。")
        else:
            lines.append(_IDS.sub("", text) + ("" if text.endswith("。") else "。"))
    for entry in report.get("dropped") or []:
        if isinstance(entry, dict):
            lines.append(f"「{entry.get('label', '')}」は新しい様式にないため、入力した値は送信されません。")
    for entry in report.get("invalid") or []:
        if isinstance(entry, dict):
            lines.append(f"確認してください：{entry.get('reason_ja', '')}")
    return lines


def _group(defn: dict[str, Any], group: dict[str, Any], evaluation: Evaluation, provenance: dict[str, Any],
           missing_priority: set[str], echoes: dict[tuple[str, int | None], list[Message]] | None = None
           ) -> dict[str, Any]:
    gid = group["id"]
    members = [item for item in defn.get("items", []) if item.get("group") == gid]
    raw_rows = evaluation.values.get(gid)
    rows_in = list(raw_rows) if isinstance(raw_rows, list) else []
    filled = list(enumerate(rows_in))
    slots = max(group["max"], len(filled))
    rows: list[dict[str, Any]] = []
    for slot in range(slots):
        original_index, row = filled[slot] if slot < len(filled) else (None, {})
        row = row if isinstance(row, dict) else {}
        cells = []
        for item in members:
            key = row_key(item)
            value = row.get(key)
            empty = value is None or value == ""
            msgs = (evaluation.messages_for(item["id"], original_index) + (echoes or {}).get((item["id"], original_index), [])
                    if original_index is not None else [])
            highlight = bool(item.get("priority")) and item["id"] in missing_priority and empty and (
                original_index is not None or (slot == 0 and not filled))
            cells.append(_field(
                item, value, name=f"{gid}-{slot}-{key}", html_id=f"f-{gid}-{slot}-{key}",
                source=provenance.get(f"{gid}[{original_index}].{key}") if original_index is not None else None,
                messages=msgs, evaluation=evaluation, derived=False, highlight=highlight, visible=True, defn=defn,
            ))
        # Empty slots after the first stay behind 「検査を追加」 (shown without JavaScript).
        spare = original_index is None and slot > 0
        rows.append({"index": slot, "filled": original_index is not None, "spare": spare, "cells": cells})
    member_ids = {item["id"] for item in members}
    group_msgs = _shown([m for m in evaluation.messages if m.item_id == gid or (m.item_id in member_ids and m.row is None)],
                        evaluation.stage, defn)
    row_errors = any(c["has_error"] for r in rows for c in r["cells"])
    return {
        "kind": "group",
        "id": gid,
        "label": group["label"],
        "max": group["max"],
        "html_id": "group-" + gid,
        "columns": [{"id": item["id"], "key": row_key(item), "label": item["label"], "type": item["type"],
                     "required": bool(item.get("required")), "priority": bool(item.get("priority"))}
                    for item in members],
        "rows": rows,
        "filled_count": len(filled),
        "messages": [m.as_dict() for m in group_msgs],
        "has_error": row_errors or any(m.severity == "error" for m in group_msgs),
        "highlight": any(item["id"] in missing_priority for item in members),
        "link_id": group.get("link_id", gid),
    }


# ---- conditions and rules in words (central admins read back what they edited) ------------------------------------

_SEVERITY_JA = {"error": "エラー（確定できない）", "warning": "警告（確定はできる）", "info": "お知らせ"}


def _value_in_words(item: dict[str, Any] | None, value: Any) -> str:
    if value == "$today":
        return "今日"
    if item is not None and item.get("type") in ("enum", "multi_enum", "prefecture"):
        labels = dict(options_of(item))
        return f"「{labels.get(value, value)}」"
    if item is not None and item.get("type") == "date" and (parsed := parse_iso_date(value)) is not None:
        return format_date_ja(parsed)
    if item is not None and item.get("type") == "age":
        return f"{value}歳"
    return f"「{value}」" if isinstance(value, str) else str(value)


def condition_in_words(cond: Any, defn: dict[str, Any]) -> str:
    """A display or rule condition in Japanese: 「ワクチン接種歴」が「有」, 「年齢」が18歳未満, … かつ …"""
    items = {i["id"]: i for i in defn.get("items", []) if isinstance(i, dict) and "id" in i}
    groups = {g["id"]: g for g in defn.get("groups", []) or [] if isinstance(g, dict) and "id" in g}

    def words(c: Any) -> str:
        if not isinstance(c, dict):
            return "（条件を読めません）"
        for key, joiner in (("and", "かつ"), ("or", "または")):
            if isinstance(c.get(key), list):
                parts = [words(p) for p in c[key]]
                text = f" {joiner} ".join(parts)
                return f"（{text}）" if len(parts) > 1 else text
        if "not" in c:
            inner = c["not"]
            if isinstance(inner, dict) and "empty" in inner and "item" in inner:
                return words({"item": inner["item"], "empty": not inner["empty"]})
            if isinstance(inner, dict) and "eq" in inner and "item" in inner:
                return words({"item": inner["item"], "eq": inner["eq"]}) + "でない（未入力を含む）"
            return f"「{words(inner)}」ではない"
        if "any" in c:
            group = groups.get(c["any"], {}).get("label", c["any"])
            return f"「{group}」のいずれかの行で {words(c.get('where'))}"
        item = items.get(c.get("item", ""))
        label = f"「{item['label']}」" if item else f"「{c.get('item')}」"
        kind = (item or {}).get("type", "")
        if "empty" in c:
            return f"{label}が未入力" if c["empty"] else f"{label}が入力済み"
        if "eq" in c:
            return f"{label}が{_value_in_words(item, c['eq'])}"
        if "ne" in c:
            return f"{label}が{_value_in_words(item, c['ne'])}以外"
        if "in" in c:
            values = "・".join(_value_in_words(item, v) for v in c["in"]) if isinstance(c["in"], list) else ""
            return f"{label}が{values}のいずれか"
        if "includes" in c:
            return f"{label}に{_value_in_words(item, c['includes'])}を含む"
        ordering = {"lt": ("より前", "未満"), "lte": ("以前", "以下"), "gt": ("より後", "を超える"), "gte": ("以後", "以上")}
        for op, (dated, counted) in ordering.items():
            if op in c:
                return f"{label}が{_value_in_words(item, c[op])}{dated if kind == 'date' else counted}"
        return "（条件を読めません）"

    return words(cond)


def rule_in_words(rule: Any, defn: dict[str, Any]) -> str:
    """What a structured rule does, in Japanese (its kind, items by label, conditions in words, severity)."""
    if not isinstance(rule, dict):
        return "（ルールを読めません）"
    labels = {i["id"]: i["label"] for i in defn.get("items", []) if isinstance(i, dict) and "id" in i}
    items = {i["id"]: i for i in defn.get("items", []) if isinstance(i, dict) and "id" in i}
    groups = {g["id"]: g.get("label", g["id"]) for g in defn.get("groups", []) or [] if isinstance(g, dict)}
    p = rule.get("params") or {}
    kind = rule.get("kind")

    def name(ref: Any) -> str:
        return "今日" if ref == "$today" else f"「{labels.get(ref, ref)}」"

    def when(key: str = "when") -> str:
        if key not in p:
            return ""
        text = condition_in_words(p[key], defn)
        return f"{text}{'とき' if text.endswith(('む', 'い', '）')) else 'のとき'}、"

    if kind == "date_order":
        levels = ["・".join(name(r) for r in (lv if isinstance(lv, list) else [lv])) for lv in p.get("chain", [])]
        text = "日付の順序：" + " ≦ ".join(levels) + "（同じ日も可）"
    elif kind in ("required_if", "expected_if"):
        targets = "・".join(name(r) for r in p.get("items", []))
        text = when() + targets + ("は必須" if kind == "required_if" else "の入力を促す")
    elif kind == "at_least_one":
        text = when() + f"「{groups.get(p.get('group'), p.get('group'))}」に {condition_in_words(p.get('where'), defn)} " \
                        "の行が少なくとも1件必要"
    elif kind == "consistency_warning":
        relation = "が一致しないとき" if p.get("relation") == "iff" else "なのにそうでないとき"
        text = when() + f"{condition_in_words(p.get('left'), defn)} と {condition_in_words(p.get('right'), defn)}{relation}に知らせる"
    elif kind == "derive":
        text = f"{name(p.get('target'))}を{name(p.get('from'))}と{name(p.get('at'))}から計算する"
    elif kind == "max_repeat":
        text = f"「{groups.get(p.get('group'), p.get('group'))}」は最大{p.get('max')}件"
    elif kind == "not_notifiable_if_empty":
        text = f"{name(p.get('item'))}が未入力なら届出の対象外（送信しない）"
    elif kind == "suggest":
        mode = "自動で選択する" if p.get("mode") == "prefill" else "候補として示す"
        text = when() + f"{name(p.get('item'))}に{_value_in_words(items.get(p.get('item')), p.get('value'))}を{mode}"
    else:
        text = f"（種類「{kind}」のルール）"
    return f"{text}。［{_SEVERITY_JA.get(rule.get('severity'), rule.get('severity'))}］"


def iter_fields(model: dict[str, Any]):
    """Every field of a render model in page order, the cells of repeat-group rows included."""
    for section in model["sections"]:
        for entry in section["entries"]:
            if entry["kind"] == "field":
                yield entry
            else:
                for row in entry["rows"]:
                    yield from row["cells"]
