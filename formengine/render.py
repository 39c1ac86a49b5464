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
from datetime import date
from typing import Any

from jpinput import address_mismatch, format_date_ja, format_date_ja_with_era, normalise_postal

from .definition import groups_by_id, row_key
from .engine import Evaluation, Message
from .valuetypes import AGE_UNIT_LABELS, DEFAULT_MAX_LENGTH, age_label, options_of, parse_iso_date

PROVENANCE_KINDS = {
    "emr": "電子カルテ",
    "master": "医療機関マスタ",
    "computed": "自動計算",
    "typed": "入力",
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


def provenance_badge(source: Any, has_value: bool) -> dict[str, str]:
    """{kind: emr|master|computed|typed|none, label_ja, detail} for one value's provenance string."""
    if not has_value:
        return {"kind": "none", "label_ja": PROVENANCE_KINDS["none"], "detail": ""}
    if not isinstance(source, str) or not source:
        return {"kind": "typed", "label_ja": PROVENANCE_KINDS["typed"], "detail": ""}
    prefix = source.split(":", 1)[0].lower()
    if prefix in _EMR_PREFIXES:
        kind = "emr"
    elif prefix in ("master", "computed", "typed"):
        kind = prefix
    else:
        kind = "typed"
    return {"kind": kind, "label_ja": PROVENANCE_KINDS[kind], "detail": source[:200]}


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
           evaluation: Evaluation, derived: bool, highlight: bool, visible: bool) -> dict[str, Any]:
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
    msg_dicts = [m.as_dict() for m in messages]
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
        "provenance": provenance_badge(source, has_value),
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
        "has_error": any(m.severity == "error" for m in messages),
        "help": item.get("help", ""),
        "emr_source": item.get("emr_source", ""),
        "link_id": item.get("link_id", item["id"]),
        "suggestion": evaluation.suggestions.get(item["id"]),
        "derived": derived,
    }


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
                    entries.append(_group(defn, groups[gid], evaluation, provenance, missing_priority))
                continue
            iid = item["id"]
            value = values.get(iid)
            visible = iid not in hidden
            entries.append(_field(
                item, value, name=iid, html_id="f-" + iid.replace(".", "-"),
                source=source_of(iid), messages=evaluation.messages_for(iid, None), evaluation=evaluation,
                derived=iid in evaluation.derived,
                highlight=visible and iid in missing_priority, visible=visible,
            ))
        has_errors = any(e.get("has_error") for e in entries) or any(
            c["has_error"] for e in entries if e["kind"] == "group" for r in e["rows"] for c in r["cells"])
        sections.append({"id": section["id"], "label": section["label"], "help": section.get("help", ""),
                         "html_id": "section-" + section["id"], "has_errors": has_errors, "entries": entries})

    _pair_postal_codes(defn, sections)
    return {
        "title": defn.get("title", ""),
        "version": defn.get("version", ""),
        "stage": evaluation.stage,
        "notifiable": evaluation.notifiable,
        "ok_to_confirm": evaluation.ok_to_confirm,
        "counts": {"errors": len(evaluation.errors), "warnings": len(evaluation.warnings),
                   "infos": len(evaluation.infos)},
        "messages": [m.as_dict() for m in evaluation.messages if m.item_id is None],
        "missing_required": [{"id": i, "label": labels.get(i, i), "html_id": anchors.get(i, "")}
                             for i in evaluation.missing_required],
        "missing_priority": [{"id": i, "label": labels.get(i, i), "html_id": anchors.get(i, "")}
                             for i in evaluation.missing_priority],
        "suggestions": evaluation.suggestions,
        "sections": sections,
    }


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


def _group(defn: dict[str, Any], group: dict[str, Any], evaluation: Evaluation, provenance: dict[str, Any],
           missing_priority: set[str]) -> dict[str, Any]:
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
            msgs = evaluation.messages_for(item["id"], original_index) if original_index is not None else []
            highlight = bool(item.get("priority")) and item["id"] in missing_priority and empty and (
                original_index is not None or (slot == 0 and not filled))
            cells.append(_field(
                item, value, name=f"{gid}-{slot}-{key}", html_id=f"f-{gid}-{slot}-{key}",
                source=provenance.get(f"{gid}[{original_index}].{key}") if original_index is not None else None,
                messages=msgs, evaluation=evaluation, derived=False, highlight=highlight, visible=True,
            ))
        rows.append({"index": slot, "filled": original_index is not None, "cells": cells})
    member_ids = {item["id"] for item in members}
    group_msgs = [m for m in evaluation.messages if m.item_id == gid or (m.item_id in member_ids and m.row is None)]
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
