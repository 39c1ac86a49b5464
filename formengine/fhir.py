"""FHIR R4: definition ⇄ Questionnaire (eInfectionReport IG style, SDC), values → QuestionnaireResponse.

Questionnaire layout: ``group_Header`` holds the items whose linkId starts with ``i0_`` (報告年月日, 医師,
医療機関), ``group_Content`` the others in definition order (a repeat group such as the tests is a nested
``group`` with ``repeats`` and ``questionnaire-maxOccurs``). Every item carries ``definition =
urn:hersys-assist:item:<item id>``. Native elements carry what FHIR can say (text, type, required, repeats,
answerOption, enableWhen, maxLength, help as a display child with itemControl ``help``); SDC extensions give
other tools FHIRPath for rules (``targetConstraint``) and the derived age (``calculatedExpression``). What FHIR
can't hold losslessly is kept in our own extensions (``form-definition``, ``form-item``, ``form-group``,
``form-rule``; JSON in valueString), so definition → Questionnaire → definition is exact.

from_questionnaire() also reads Questionnaires made elsewhere (no own extensions): non-repeating groups become
sections, repeating groups repeat groups, item ids come from ``definition`` or the linkId, enableWhen becomes
``visible_when``; the result is validated like any definition.
"""
from __future__ import annotations

import copy
import json
import re
from datetime import date
from typing import Any

from .conditions import TODAY, comparison_op
from .definition import FORMAT, ensure_valid, groups_by_id, items_by_id, row_key
from .engine import evaluate
from .errors import DefinitionError
from .valuetypes import INVALID, check_value, option_label, options_of

PROFILE = "http://jpfhir.jp/fhir/eInfectionReport/StructureDefinition/JP_Questionnaire_eInfectionReport_Common"
ITEM_PREFIX = "urn:hersys-assist:item:"
VALUESET_PREFIX = "urn:hersys-assist:valueset:"
PREFECTURE_SYSTEM = VALUESET_PREFIX + "prefecture-jisx0401"
EXT = "http://hersys-assist.jp/fhir/StructureDefinition/"
EXT_DEFINITION = EXT + "form-definition"
EXT_ITEM = EXT + "form-item"
EXT_GROUP = EXT + "form-group"
EXT_RULE = EXT + "form-rule"
SDC_CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
SDC_ENABLE_WHEN_EXPRESSION = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"
TARGET_CONSTRAINT = "http://hl7.org/fhir/StructureDefinition/targetConstraint"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
MAX_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
UNIT_OPTION = "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption"
UCUM = "http://unitsofmeasure.org"
HEADER = "group_Header"
CONTENT = "group_Content"
QR_STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")

_FHIR_TYPE = {"text": "string", "kana": "string", "enum": "choice", "multi_enum": "choice", "date": "date",
              "integer": "integer", "phone": "string", "postal_code": "string", "prefecture": "choice",
              "age": "quantity"}
_AGE_UCUM = {"years": ("a", "歳"), "months": ("mo", "か月")}
#: item keys kept in the form-item extension (everything else is native).
_ITEM_EXTRA_KEYS = ("type", "section", "group", "priority", "medical_judgement", "visible_when", "emr_source",
                    "hersys_path", "min", "max")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------------------------------------------------
# FHIRPath text for other tools (our own extensions stay authoritative)


class _Paths:
    def __init__(self, defn: dict[str, Any]) -> None:
        self.items = items_by_id(defn)
        self.groups = groups_by_id(defn)

    def link(self, item_id: str) -> str:
        entry = self.items.get(item_id) or self.groups.get(item_id) or {}
        return entry.get("link_id", item_id)

    def answer(self, item_id: str, row_base: str | None = None) -> str:
        item = self.items.get(item_id, {})
        base = row_base if row_base and item.get("group") else "%resource.repeat(item)"
        path = f"{base}.where(linkId='{self.link(item_id)}').answer.value"
        if item.get("type") in ("enum", "multi_enum", "prefecture"):
            path += ".code"
        elif item.get("type") == "age":
            path += ".value"
        return path

    def literal(self, item_id: str, value: Any) -> str:
        if value == TODAY:
            return "today()"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        if self.items.get(item_id, {}).get("type") == "date":
            return "@" + text
        return f"'{text}'"

    def cond(self, cond: Any, row_base: str | None = None) -> str:
        if not isinstance(cond, dict):
            return "false"
        if "and" in cond:
            return "(" + " and ".join(self.cond(c, row_base) for c in cond["and"]) + ")"
        if "or" in cond:
            return "(" + " or ".join(self.cond(c, row_base) for c in cond["or"]) + ")"
        if "not" in cond:
            return f"({self.cond(cond['not'], row_base)}).not()"
        if "any" in cond:
            gid = cond["any"]
            inner = self.cond(cond["where"], "item")
            return f"%resource.repeat(item).where(linkId='{self.link(gid)}').where({inner}).exists()"
        item_id, op = cond.get("item", ""), comparison_op(cond)
        path = self.answer(item_id, row_base)
        operand = cond.get(op) if op else None
        if op == "empty":
            return f"{path}.empty()" if operand else f"{path}.exists()"
        if op in ("eq", "includes"):
            return f"({path} contains {self.literal(item_id, operand)})"
        if op == "ne":
            return f"({path} contains {self.literal(item_id, operand)}).not()"
        if op == "in":
            options = " | ".join(self.literal(item_id, v) for v in operand)
            return f"{path}.where($this in ({options})).exists()"
        symbol = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}.get(op or "", "=")
        return f"{path}.where($this {symbol} {self.literal(item_id, operand)}).exists()"

    def rule(self, rule: dict[str, Any]) -> str | None:
        kind, p = rule["kind"], rule["params"]
        if kind == "date_order":
            levels = [lvl if isinstance(lvl, list) else [lvl] for lvl in p["chain"]]
            parts = []
            for earlier, later in zip(levels, levels[1:], strict=False):
                for a in earlier:
                    for b in later:
                        pa = "today()" if a == TODAY else self.answer(a)
                        pb = "today()" if b == TODAY else self.answer(b)
                        parts.append(f"({pa}.empty() or {pb}.empty() or {pa}.all($this <= {pb}.min()))")
            return " and ".join(parts) or "true"
        if kind in ("required_if", "expected_if"):
            present = " and ".join(f"{self.answer(i)}.exists()" for i in p["items"])
            return f"({self.cond(p['when'])}).not() or ({present})"
        if kind == "at_least_one":
            found = self.cond({"any": p["group"], "where": p["where"]})
            return f"({self.cond(p['when'])}).not() or {found}" if "when" in p else found
        if kind == "consistency_warning":
            left, right = self.cond(p["left"]), self.cond(p["right"])
            body = f"({left} = {right})" if p["relation"] == "iff" else f"(({left}).not() or {right})"
            return f"({self.cond(p['when'])}).not() or {body}" if "when" in p else body
        if kind == "max_repeat":
            return f"%resource.repeat(item).where(linkId='{self.link(p['group'])}').count() <= {p['max']}"
        if kind == "not_notifiable_if_empty":
            return f"{self.answer(p['item'])}.exists()"
        return None


# ---------------------------------------------------------------------------------------------------------
# definition → Questionnaire


def _enable_when(cond: Any, paths: _Paths) -> tuple[list[dict[str, Any]], str | None] | None:
    """Native enableWhen for simple conditions (one comparison, an `in`, or an `and` of comparisons)."""
    def one(c: dict[str, Any]) -> list[dict[str, Any]] | None:
        op = comparison_op(c)
        item = paths.items.get(c.get("item", ""))
        if op is None or item is None or item.get("group"):
            return None
        question = item.get("link_id", item["id"])
        if op == "empty":
            return [{"question": question, "operator": "exists", "answerBoolean": not c["empty"]}]
        values = c["in"] if op == "in" else [c[op]]
        operator = {"eq": "=", "includes": "=", "in": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">",
                    "gte": ">="}[op]
        out = []
        for value in values:
            entry: dict[str, Any] = {"question": question, "operator": operator}
            if item["type"] in ("enum", "multi_enum", "prefecture"):
                entry["answerCoding"] = _coding(item, value)
            elif item["type"] == "date":
                entry["answerDate"] = value
            elif item["type"] == "integer" and isinstance(value, int):
                entry["answerInteger"] = value
            elif item["type"] == "age" and isinstance(value, (int, float)):
                entry["answerQuantity"] = {"value": value, "unit": "歳", "system": UCUM, "code": "a"}
            elif isinstance(value, str):
                entry["answerString"] = value
            else:
                return None
            out.append(entry)
        return out

    if not isinstance(cond, dict):
        return None
    if "and" in cond:
        parts = [one(c) if isinstance(c, dict) and "item" in c and "in" not in c else None for c in cond["and"]]
        if any(p is None for p in parts):
            return None
        return [e for p in parts for e in p or []], "all"
    if "item" in cond:
        entries = one(cond)
        if entries is None:
            return None
        return entries, ("any" if len(entries) > 1 else None)
    return None


def _coding(item: dict[str, Any], code: Any) -> dict[str, Any]:
    system = PREFECTURE_SYSTEM if item["type"] == "prefecture" else VALUESET_PREFIX + item["id"]
    coding = {"system": system, "code": str(code)}
    label = option_label(item, code)
    if label:
        coding["display"] = label
    return coding


def _help_child(link_id: str, text: str) -> dict[str, Any]:
    return {
        "linkId": f"{link_id}-help",
        "type": "display",
        "text": text,
        "extension": [{"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [
            {"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "help"}]}}],
    }


def _q_item(item: dict[str, Any], paths: _Paths, defn: dict[str, Any]) -> dict[str, Any]:
    link_id = item.get("link_id", item["id"])
    q: dict[str, Any] = {"linkId": link_id, "definition": ITEM_PREFIX + item["id"], "text": item["label"],
                         "type": _FHIR_TYPE[item["type"]]}
    extras = {k: item[k] for k in _ITEM_EXTRA_KEYS if k in item}
    if "link_id" not in item:
        extras["no_link_id"] = True
    extensions = [{"url": EXT_ITEM, "valueString": _json(extras)}]
    if item["type"] == "age":
        extensions += [{"url": UNIT_OPTION, "valueCoding": {"system": UCUM, "code": code, "display": label}}
                       for code, label in _AGE_UCUM.values()]
    for rule in defn.get("rules", []):
        if rule["kind"] == "derive" and rule["params"]["target"] == item["id"]:
            p = rule["params"]
            extensions.append({"url": SDC_CALCULATED, "valueExpression": {
                "description": rule["message"], "language": "text/fhirpath",
                "expression": f"{paths.answer(p['at'])} - {paths.answer(p['from'])}  /* age_at: years, months < 1y */"}})
    if item.get("visible_when") is not None:
        native = _enable_when(item["visible_when"], paths)
        if native is not None:
            q["enableWhen"], behavior = native
            if behavior:
                q["enableBehavior"] = behavior
        else:
            extensions.append({"url": SDC_ENABLE_WHEN_EXPRESSION, "valueExpression": {
                "language": "text/fhirpath", "expression": paths.cond(item["visible_when"])}})
    q["extension"] = extensions
    if "required" in item:
        q["required"] = bool(item["required"])
    if item["type"] == "multi_enum":
        q["repeats"] = True
    if "max_length" in item:
        q["maxLength"] = item["max_length"]
    if item["type"] in ("enum", "multi_enum"):
        q["answerOption"] = [{"valueCoding": {"system": VALUESET_PREFIX + item["id"], "code": v["code"],
                                              "display": v["label"]}} for v in item.get("values", [])]
    elif item["type"] == "prefecture":
        q["answerOption"] = [{"valueCoding": {"system": PREFECTURE_SYSTEM, "code": c, "display": label}}
                             for c, label in options_of(item)]
    if item.get("help"):
        q["item"] = [_help_child(link_id, item["help"])]
    return q


def _q_group(group: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    link_id = group.get("link_id", group["id"])
    extras = {"id": group["id"], "section": group["section"]}
    if "link_id" not in group:
        extras["no_link_id"] = True
    q: dict[str, Any] = {
        "linkId": link_id,
        "definition": ITEM_PREFIX + group["id"],
        "text": group["label"],
        "type": "group",
        "repeats": True,
        "extension": [{"url": EXT_GROUP, "valueString": _json(extras)},
                      {"url": MAX_OCCURS, "valueInteger": group["max"]}],
        "item": members,
    }
    if group.get("help"):
        q["item"] = [_help_child(link_id, group["help"]), *members]
    return q


def _placements(defn: dict[str, Any]):
    """Top-level entries in form order with whether they belong in the header group (linkId ``i0_*``): each
    repeat group once, where its first member stands, as (group, members, in_header); other items as
    (item, None, in_header)."""
    groups = groups_by_id(defn)
    placed: set[str] = set()
    for item in defn["items"]:
        gid = item.get("group")
        if not gid:
            yield item, None, item.get("link_id", "").startswith("i0_")
        elif gid not in placed:
            placed.add(gid)
            group = groups[gid]
            yield group, [i for i in defn["items"] if i.get("group") == gid], group.get("link_id", "").startswith("i0_")


def to_questionnaire(defn: dict[str, Any], *, url: str, version: str) -> dict[str, Any]:
    """An R4 Questionnaire for a (valid) definition. ``url``/``version`` are the canonical the
    QuestionnaireResponse will point at (``<url>|<version>``)."""
    ensure_valid(defn)
    paths = _Paths(defn)
    meta = {k: copy.deepcopy(defn[k]) for k in ("format", "form", "catalog", "disease", "version", "title",
                                                 "sections", "changes_from_previous") if k in defn}
    meta["item_order"] = [item["id"] for item in defn["items"]]
    meta["group_order"] = [g["id"] for g in defn.get("groups", [])]
    meta["has_groups_key"] = "groups" in defn
    extensions: list[dict[str, Any]] = [{"url": EXT_DEFINITION, "valueString": _json(meta)}]
    for rule in defn["rules"]:
        extensions.append({"url": EXT_RULE, "valueString": _json(rule)})
        expression = paths.rule(rule)
        if expression is None:
            continue
        extensions.append({"url": TARGET_CONSTRAINT, "extension": [
            {"url": "key", "valueId": re.sub(r"[^A-Za-z0-9\-.]", "-", rule["id"])[:64]},
            {"url": "severity", "valueCode": rule["severity"]},
            {"url": "expression", "valueExpression": {"language": "text/fhirpath", "expression": expression}},
            {"url": "human", "valueString": rule["message"]},
        ]})

    header: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for entry, members, in_header in _placements(defn):
        target = header if in_header else content
        if members is None:
            target.append(_q_item(entry, paths, defn))
        else:
            target.append(_q_group(entry, [_q_item(i, paths, defn) for i in members]))
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"HERSYS_{defn.get('form') or defn.get('disease', '')}_{version}")[:250]
    q: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "meta": {"profile": [PROFILE]},
        "extension": extensions,
        "url": url,
        "version": version,
        "name": name,
        "title": defn.get("title") or name,
        "status": "active",
        "subjectType": ["Patient"],
        "language": "ja",
        "item": [
            {"linkId": HEADER, "text": "報告者（医師）・医療機関", "type": "group", "required": True, "item": header},
            {"linkId": CONTENT, "text": "届出内容", "type": "group", "required": True, "item": content},
        ],
    }
    return q


# ---------------------------------------------------------------------------------------------------------
# Questionnaire → definition


def _ext(element: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in element.get("extension", []) or [] if isinstance(e, dict) and e.get("url") == url]


def _ext_json(element: dict[str, Any], url: str) -> Any:
    found = _ext(element, url)
    if not found:
        return None
    try:
        return json.loads(found[0].get("valueString", ""))
    except (TypeError, ValueError):
        raise DefinitionError(f"拡張 {url} のJSONが壊れています（linkId {element.get('linkId')}）。")


def _is_help(item: dict[str, Any]) -> bool:
    if item.get("type") != "display":
        return False
    for e in _ext(item, ITEM_CONTROL):
        for coding in (e.get("valueCodeableConcept") or {}).get("coding", []):
            if coding.get("code") == "help":
                return True
    return False


def _name(text: str, fallback: str = "x") -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text or "")
    if not name or not name[0].isalpha():
        name = fallback + "_" + name
    return name[:80]


def from_questionnaire(q: dict[str, Any]) -> dict[str, Any]:
    """A definition from a Questionnaire (ours: exact round trip; others: best effort). Raises
    DefinitionError when the result is not a valid definition."""
    if not isinstance(q, dict) or q.get("resourceType") != "Questionnaire":
        raise DefinitionError("FHIR Questionnaire ではありません（resourceType が Questionnaire ではありません）。")
    try:
        meta = _ext_json(q, EXT_DEFINITION)
        if isinstance(meta, dict):
            return _from_own(q, meta)
        return _from_foreign(q)
    except DefinitionError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise DefinitionError(f"Questionnaire の構造が正しくありません（{type(exc).__name__}）。")


def _walk(items: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(reversed(items if isinstance(items, list) else []))
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        out.append(node)
        stack.extend(reversed(node.get("item", []) if isinstance(node.get("item"), list) else []))
    return out


def _help_of(node: dict[str, Any]) -> str | None:
    for child in node.get("item", []) or []:
        if isinstance(child, dict) and _is_help(child):
            return child.get("text", "")
    return None


def _from_own(q: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    items: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for node in _walk(q.get("item")):
        if node.get("linkId") in (HEADER, CONTENT) or _is_help(node):
            continue
        gmeta = _ext_json(node, EXT_GROUP)
        if isinstance(gmeta, dict):
            group: dict[str, Any] = {"id": gmeta["id"], "label": node.get("text", ""), "section": gmeta["section"]}
            max_occurs = _ext(node, MAX_OCCURS)
            group["max"] = max_occurs[0].get("valueInteger") if max_occurs else 4
            if not gmeta.get("no_link_id"):
                group["link_id"] = node["linkId"]
            help_text = _help_of(node)
            if help_text is not None:
                group["help"] = help_text
            groups[group["id"]] = group
            continue
        extras = _ext_json(node, EXT_ITEM)
        if not isinstance(extras, dict):
            raise DefinitionError(f"linkId「{node.get('linkId')}」に項目情報の拡張がありません。")
        definition = node.get("definition", "")
        if not isinstance(definition, str) or not definition.startswith(ITEM_PREFIX):
            raise DefinitionError(f"linkId「{node.get('linkId')}」の definition が {ITEM_PREFIX}<項目ID> ではありません。")
        item: dict[str, Any] = {"id": definition[len(ITEM_PREFIX):], "label": node.get("text", "")}
        item.update({k: extras[k] for k in _ITEM_EXTRA_KEYS if k in extras})
        if item.get("type") in ("enum", "multi_enum"):
            item["values"] = [{"code": o["valueCoding"]["code"], "label": o["valueCoding"].get("display", "")}
                              for o in node.get("answerOption", []) if isinstance(o.get("valueCoding"), dict)]
        if "required" in node:
            item["required"] = bool(node["required"])
        if "maxLength" in node:
            item["max_length"] = node["maxLength"]
        if not extras.get("no_link_id"):
            item["link_id"] = node["linkId"]
        help_text = _help_of(node)
        if help_text is not None:
            item["help"] = help_text
        items[item["id"]] = item

    order = meta.get("item_order") or list(items)
    ordered = [items[i] for i in order if i in items] + [v for k, v in items.items() if k not in order]
    group_order = meta.get("group_order") or list(groups)
    defn: dict[str, Any] = {k: copy.deepcopy(meta[k]) for k in ("format", "form", "catalog", "disease", "version",
                                                                  "title", "sections", "changes_from_previous")
                            if k in meta}
    if meta.get("has_groups_key", True) or groups:
        defn["groups"] = [groups[g] for g in group_order if g in groups] + [
            v for k, v in groups.items() if k not in group_order]
    defn["items"] = ordered
    defn["rules"] = []
    for e in _ext(q, EXT_RULE):
        try:
            defn["rules"].append(json.loads(e.get("valueString", "")))
        except (TypeError, ValueError):
            raise DefinitionError("ルールの拡張のJSONが壊れています。")
    return ensure_valid(defn)


_Q_TYPES = {"string": "text", "text": "text", "url": "text", "choice": "enum", "open-choice": "enum",
            "date": "date", "dateTime": "date", "integer": "integer", "decimal": "integer", "boolean": "enum",
            "quantity": "age"}


def _from_foreign(q: dict[str, Any]) -> dict[str, Any]:
    sections: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    link_to_id: dict[str, str] = {}
    pending_conditions: list[tuple[dict[str, Any], dict[str, Any]]] = []
    used: set[str] = set()

    def unique(name: str) -> str:
        base, n = name, 2
        while name in used:
            name = f"{base}_{n}"
            n += 1
        used.add(name)
        return name

    def add_item(node: dict[str, Any], section: str, group: str | None) -> None:
        q_type = node.get("type")
        item_type = _Q_TYPES.get(q_type)
        if item_type is None:
            return
        definition = node.get("definition") if isinstance(node.get("definition"), str) else ""
        if definition.startswith(ITEM_PREFIX) and not group:
            iid = definition[len(ITEM_PREFIX):]
        else:
            iid = f"{group or section}.{_name(str(node.get('linkId', '')), 'i')}"
        iid = unique(iid)
        if item_type == "age" and q_type == "quantity":
            item_type = "age"
        item: dict[str, Any] = {"id": iid, "label": node.get("text") or str(node.get("linkId")), "type": item_type,
                                "section": section}
        if group:
            item["group"] = group
        if q_type == "boolean":
            item["values"] = [{"code": "true", "label": "はい"}, {"code": "false", "label": "いいえ"}]
        elif item_type == "enum":
            if node.get("repeats"):
                item["type"] = "multi_enum"
            values = []
            for option in node.get("answerOption", []) or []:
                coding = option.get("valueCoding") if isinstance(option, dict) else None
                if isinstance(coding, dict) and coding.get("code"):
                    values.append({"code": _code(str(coding["code"])), "label": coding.get("display") or coding["code"]})
                elif isinstance(option, dict) and isinstance(option.get("valueString"), str):
                    values.append({"code": _code(option["valueString"]), "label": option["valueString"]})
            if not values:
                item["type"] = "text"
            else:
                item["values"] = values
        item["required"] = bool(node.get("required", False))
        item["priority"] = False
        item["medical_judgement"] = False
        if isinstance(node.get("maxLength"), int) and node["maxLength"] > 0:
            item["max_length"] = min(node["maxLength"], 20000)
        if isinstance(node.get("linkId"), str) and re.fullmatch(r"[A-Za-z0-9_.\-]{1,120}", node["linkId"]):
            item["link_id"] = node["linkId"]
            link_to_id[node["linkId"]] = iid
        help_text = _help_of(node)
        if help_text:
            item["help"] = help_text
        items.append(item)
        if node.get("enableWhen") and not group:
            pending_conditions.append((item, node))

    def add_children(nodes: Any, section: str, group: str | None) -> None:
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, dict) or _is_help(node):
                continue
            if node.get("type") == "group":
                if node.get("repeats") and not group:
                    gid = unique(_name(str(node.get("linkId", "")), "g"))
                    max_occurs = _ext(node, MAX_OCCURS)
                    groups.append({"id": gid, "label": node.get("text") or gid, "section": section,
                                   "max": max_occurs[0].get("valueInteger", 4) if max_occurs else 4})
                    add_children(node.get("item"), section, gid)
                else:
                    add_children(node.get("item"), section, group)
                continue
            add_item(node, section, group)

    loose: list[dict[str, Any]] = []
    for node in q.get("item", []) or []:
        if isinstance(node, dict) and node.get("type") == "group" and not node.get("repeats"):
            sid = unique(_name(str(node.get("linkId", "")), "s"))
            sections.append({"id": sid, "label": node.get("text") or sid})
            add_children(node.get("item"), sid, None)
        else:
            loose.append(node)
    if loose:
        sid = unique("main")
        sections.append({"id": sid, "label": "項目"})
        add_children(loose, sid, None)

    for item, node in pending_conditions:
        cond = _condition_from_enable_when(node, link_to_id, {i["id"]: i for i in items})
        if cond is not None:
            item["visible_when"] = cond
    if not items:
        raise DefinitionError("Questionnaire に取り込める項目がありません。")
    version = str(q.get("version") or "imported")[:40]
    defn = {"format": FORMAT, "version": version, "title": str(q.get("title") or q.get("name") or "")[:500],
            "sections": sections, "groups": groups, "items": items, "rules": []}
    return ensure_valid(defn)


def _code(text: str) -> str:
    code = re.sub(r"[^A-Za-z0-9_.:\-]", "_", text)[:80]
    return code or "_"


def _condition_from_enable_when(node: dict[str, Any], link_to_id: dict[str, str],
                                items: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    parts = []
    for ew in node.get("enableWhen", []) or []:
        if not isinstance(ew, dict):
            return None
        iid = link_to_id.get(ew.get("question", ""))
        if iid is None or items[iid].get("group"):
            return None
        op = ew.get("operator")
        answer = next((v for k, v in ew.items() if k.startswith("answer")), None)
        if isinstance(answer, dict):
            answer = answer.get("code", answer.get("value"))
        if op == "exists":
            parts.append({"item": iid, "empty": not answer})
            continue
        if items[iid]["type"] in ("enum", "multi_enum") and answer is not None:
            answer = _code(str(answer).lower() if isinstance(answer, bool) else str(answer))
        mapped = {"=": "includes" if items[iid]["type"] == "multi_enum" else "eq", "!=": "ne", "<": "lt",
                  "<=": "lte", ">": "gt", ">=": "gte"}.get(op or "")
        if mapped is None or answer is None:
            return None
        parts.append({"item": iid, mapped: answer})
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"or": parts} if node.get("enableBehavior") == "any" else {"and": parts}


# ---------------------------------------------------------------------------------------------------------
# values → QuestionnaireResponse


def _answers(item: dict[str, Any], value: Any) -> list[dict[str, Any]]:
    checked, problem = check_value(item, value)
    if problem or checked is INVALID:
        return []
    item_type = item["type"]
    if item_type in ("enum", "prefecture"):
        return [{"valueCoding": _coding(item, checked)}]
    if item_type == "multi_enum":
        return [{"valueCoding": _coding(item, code)} for code in checked]
    if item_type == "date":
        return [{"valueDate": checked.isoformat()}]
    if item_type == "integer":
        return [{"valueInteger": checked}]
    if item_type == "age":
        code, unit = _AGE_UCUM[checked["unit"]]
        return [{"valueQuantity": {"value": checked["value"], "unit": unit, "system": UCUM, "code": code}}]
    return [{"valueString": checked}]


def _qr_item(item: dict[str, Any], answers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"linkId": item.get("link_id", item["id"]), "definition": ITEM_PREFIX + item["id"], "text": item["label"],
            "answer": answers}


def to_questionnaire_response(defn: dict[str, Any], values: dict[str, Any], *, questionnaire_canonical: str,
                              status: str) -> dict[str, Any]:
    """A QuestionnaireResponse of the values: answered, visible, valid items only (answers typed valueString /
    valueDate / valueCoding / valueInteger / valueQuantity for ages), each with linkId and ``definition``
    ``urn:hersys-assist:item:<id>``; repeat-group rows as repeated group items. Derived values (age) are
    included as evaluate() computes them."""
    if status not in QR_STATUSES:
        raise ValueError(f"status must be one of {QR_STATUSES}, not {status!r}")
    ensure_valid(defn)
    evaluation = evaluate(defn, values, today=date(9999, 12, 31), stage="confirm")
    current = evaluation.values
    hidden = set(evaluation.hidden)
    header: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for entry, members, in_header in _placements(defn):
        target = header if in_header else content
        if members is not None:
            group, gid = entry, entry["id"]
            rows = current.get(gid) if isinstance(current.get(gid), list) else []
            for row in rows[: group["max"]]:
                if not isinstance(row, dict):
                    continue
                cells = []
                for member in members:
                    answers = _answers(member, row.get(row_key(member))) if row.get(row_key(member)) is not None else []
                    if answers:
                        cells.append(_qr_item(member, answers))
                if cells:
                    target.append({"linkId": group.get("link_id", gid), "definition": ITEM_PREFIX + gid,
                                   "text": group["label"], "item": cells})
            continue
        item = entry
        if item["id"] in hidden or item["id"] not in current:
            continue
        answers = _answers(item, current[item["id"]])
        if answers:
            target.append(_qr_item(item, answers))
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire_canonical,
        "status": status,
        "item": [],
    }
    if header:
        qr["item"].append({"linkId": HEADER, "text": "報告者（医師）・医療機関", "item": header})
    if content:
        qr["item"].append({"linkId": CONTENT, "text": "届出内容", "item": content})
    return qr


# ---------------------------------------------------------------------------------------------------------
# QuestionnaireResponse → values (the inverse of to_questionnaire_response)


def values_from_questionnaire_response(defn: dict[str, Any], qr: Any) -> dict[str, Any]:
    """The flat item values a QuestionnaireResponse made by `to_questionnaire_response` carries, read through the
    ``definition`` (``urn:hersys-assist:item:<id>``) of each answered item and the definition's item types:
    enum codes, lists of codes, ISO dates, ints, ages ({value, unit}), strings; repeat-group rows as lists of
    {row key: value}. Items the definition does not have are left out. Lenient: a QR of another shape gives what
    can be read (used to bring a portal back in line with what the destination holds, e.g. after a restore)."""
    items = items_by_id(defn)
    groups = groups_by_id(defn)
    out: dict[str, Any] = {}
    stack = list(qr.get("item") or []) if isinstance(qr, dict) else []
    while stack:
        node = stack.pop(0)
        if not isinstance(node, dict):
            continue
        ident = _item_id(node)
        if ident in groups:
            row = {}
            for cell in node.get("item") or []:
                cid = _item_id(cell) if isinstance(cell, dict) else None
                if cid in items and items[cid].get("group") == ident:
                    value = _value_of(items[cid], cell.get("answer"))
                    if value is not None:
                        row[row_key(items[cid])] = value
            if row:
                out.setdefault(ident, []).append(row)
            continue
        if ident in items and not items[ident].get("group"):
            value = _value_of(items[ident], node.get("answer"))
            if value is not None:
                out[ident] = value
        stack[0:0] = [n for n in node.get("item") or [] if isinstance(n, dict)]
    return out


def _item_id(node: dict[str, Any]) -> str | None:
    definition = node.get("definition")
    return definition[len(ITEM_PREFIX):] if isinstance(definition, str) and definition.startswith(ITEM_PREFIX) else None


def _value_of(item: dict[str, Any], answers: Any) -> Any:
    if not isinstance(answers, list) or not answers:
        return None
    values = []
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        if "valueCoding" in answer and isinstance(answer["valueCoding"], dict):
            values.append(answer["valueCoding"].get("code"))
        elif "valueQuantity" in answer and isinstance(answer["valueQuantity"], dict):
            q = answer["valueQuantity"]
            unit = next((u for u, (code, _) in _AGE_UCUM.items() if code == q.get("code")), None)
            values.append({"value": q.get("value"), "unit": unit} if unit else None)
        else:
            values.append(next((v for k, v in answer.items() if k.startswith("value")), None))
    values = [v for v in values if v is not None]
    if not values:
        return None
    return values if item.get("type") == "multi_enum" else values[0]
