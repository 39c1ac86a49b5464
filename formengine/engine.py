"""The interpreter: definition + values (+ today) → Evaluation. Pure: no I/O, no clock, no Django.

Order of work: structure and type checks → derived values (``derive``) → display conditions → pre-fills and
suggestions (``suggest``) → required / priority → the other rules. Values that fail their type check stay in
``Evaluation.values`` exactly as given (nothing is lost) but count as absent for the rules.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .conditions import TODAY, Context, evaluate_condition, is_empty
from .definition import groups_by_id, items_by_id, row_key
from .valuetypes import age_at, check_value, option_label

STAGES = ("draft", "confirm")
MAX_ROWS_CHECKED = 50
MAX_MESSAGES = 500

#: Rule kinds (and built-in checks) that are about completeness: informational at stage "draft".
COMPLETENESS = ("required_if", "at_least_one", "not_notifiable_if_empty")


@dataclass(frozen=True)
class Message:
    """One finding. ``item_id`` None = form-level; ``row`` = index in a repeat group; ``rule_id`` is the
    definition's rule id or a built-in check (``item.type``, ``item.required``, ``item.unknown``,
    ``item.hidden_value``, ``group.structure``, ``values.structure``)."""

    item_id: str | None
    row: int | None
    rule_id: str | None
    severity: str  # "error" | "warning" | "info"
    text_ja: str

    def as_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "row": self.row, "rule_id": self.rule_id, "severity": self.severity,
                "text_ja": self.text_ja}


@dataclass
class Evaluation:
    values: dict[str, Any]
    errors: list[Message] = field(default_factory=list)
    warnings: list[Message] = field(default_factory=list)
    infos: list[Message] = field(default_factory=list)
    suggestions: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing_required: list[str] = field(default_factory=list)
    missing_priority: list[str] = field(default_factory=list)
    notifiable: bool = True
    ok_to_confirm: bool = False
    stage: str = "draft"
    derived: dict[str, str] = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        return [*self.errors, *self.warnings, *self.infos]

    def messages_for(self, item_id: str | None, row: int | None = None) -> list[Message]:
        """Messages of one item (and, for repeat-group items, one row); item_id None = form-level."""
        return [m for m in self.messages if m.item_id == item_id and (row is None or m.row == row)]


def render_text(template: str, **params: Any) -> str:
    """Fill ``{name}`` placeholders; unknown names stay as written (admin-edited texts can't break it)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), template)


class _Collector:
    def __init__(self) -> None:
        self.found: list[tuple[Message, bool]] = []  # (message, is_completeness)
        self._seen: set[Message] = set()

    def add(self, item_id: str | None, row: int | None, rule_id: str | None, severity: str, text: str,
            completeness: bool = False) -> None:
        msg = Message(item_id, row, rule_id, severity, text)
        if msg in self._seen or len(self.found) >= MAX_MESSAGES:
            return
        self._seen.add(msg)
        self.found.append((msg, completeness))


def _row_prefix(group: dict[str, Any] | None, row: int | None) -> str:
    if group is None or row is None:
        return ""
    return f"{group['label']} {row + 1}件目："


def evaluate(
    defn: dict[str, Any],
    values: Any,
    *,
    today: date,
    provenance: dict[str, Any] | None = None,
    stage: str = "draft",
) -> Evaluation:
    """Check values against a (valid) definition. Never raises on any ``values``.

    ``stage="draft"``: completeness findings (required items, required_if, at_least_one, not notifiable) are
    informational; type and consistency errors still count. ``ok_to_confirm`` is always computed as if at stage
    "confirm". ``provenance`` is accepted for symmetry with render_model; evaluation does not depend on it.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    del provenance  # evaluation is independent of where values came from
    items = items_by_id(defn)
    groups = groups_by_id(defn)
    out = _Collector()
    result = Evaluation(values={}, stage=stage)

    if not isinstance(values, Mapping):
        out.add(None, None, "values.structure", "error", "入力値の形式が正しくありません（項目IDと値の組が必要です）。")
        values = {}

    # 1. structure and types --------------------------------------------------------------------------
    clean: dict[str, Any] = {}
    rows: dict[str, list[dict[str, Any]]] = {gid: [] for gid in groups}
    type_errors: dict[str, Message] = {}
    kept: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key if isinstance(raw_key, str) else str(raw_key)
        if is_empty(value) and not (isinstance(value, str) and value):
            continue
        if key in groups:
            kept[key] = _check_group(groups[key], defn, value, rows[key], out)
            continue
        kept[key] = value
        item = items.get(key)
        if item is None or item.get("group"):
            out.add(None, None, "item.unknown", "warning",
                    f"この様式にない項目「{_clip(key)}」の値があります（保存はされますが送信されません）。")
            continue
        if is_empty(value):  # whitespace only: kept as typed, counts as absent
            continue
        checked, problem = check_value(item, value)
        if problem:
            type_errors[key] = Message(key, None, "item.type", "error", problem)
        else:
            clean[key] = checked

    # 2. derived values -------------------------------------------------------------------------------
    for rule in defn.get("rules", []):
        if rule["kind"] != "derive":
            continue
        p = rule["params"]
        birth, at = clean.get(p["from"]), clean.get(p["at"])
        if not isinstance(birth, date) or not isinstance(at, date):
            continue
        age = age_at(birth, at)
        if age is None:
            out.add(p["target"], None, rule["id"], rule["severity"], render_text(rule["message"]))
            continue
        clean[p["target"]] = age
        kept[p["target"]] = dict(age)
        type_errors.pop(p["target"], None)
        result.derived[p["target"]] = f"computed:{rule['id']}"
    for msg in type_errors.values():
        out.add(msg.item_id, msg.row, msg.rule_id, msg.severity, msg.text_ja)

    types = {iid: item["type"] for iid, item in items.items()}
    group_of = {iid: item["group"] for iid, item in items.items() if item.get("group")}
    ctx = Context(clean, rows, types, group_of, today)

    # 3. display conditions (to a fixed point: hidden items count as absent for other conditions) ---------
    hidden: set[str] = set()
    for _ in range(len(items) + 1):
        now_hidden = {iid for iid, item in items.items()
                      if item.get("visible_when") is not None and not evaluate_condition(item["visible_when"], ctx)}
        if now_hidden == hidden:
            break
        hidden = now_hidden
        ctx = Context({k: v for k, v in clean.items() if k not in hidden}, rows, types, group_of, today)
    for iid in sorted(hidden, key=list(items).index):
        if iid in kept:
            out.add(iid, None, "item.hidden_value", "warning",
                    f"「{items[iid]['label']}」は表示条件を満たさないため、入力された値は送信されません。")
    visible_clean = dict(ctx.values)

    # 4. pre-fills and suggestions -----------------------------------------------------------------------
    prefilled: set[str] = set()
    for rule in defn.get("rules", []):
        if rule["kind"] != "suggest":
            continue
        p = rule["params"]
        target = items[p["item"]]
        if p["item"] in hidden or not evaluate_condition(p["when"], ctx):
            continue
        current = visible_clean.get(p["item"])
        present = (p["value"] in current) if isinstance(current, list) else current == p["value"]
        applied = False
        # Pre-fill only an item nobody has filled (absent from the values) or that this run pre-filled.
        if not present and p["mode"] == "prefill" and (p["item"] not in kept or p["item"] in prefilled):
            if target["type"] == "multi_enum":
                new: Any = [*(kept.get(p["item"]) or []), p["value"]]
            else:
                new = p["value"]
            kept[p["item"]] = new
            visible_clean[p["item"]] = clean[p["item"]] = list(new) if isinstance(new, list) else new
            prefilled.add(p["item"])
            result.derived[p["item"]] = f"computed:{rule['id']}"
            applied = present = True
        if not present or applied:
            _add_suggestion(result.suggestions, target, p["value"], render_text(rule["message"]), rule, applied)
    ctx = Context(visible_clean, rows, types, group_of, today)

    # 5. required and priority items --------------------------------------------------------------------
    missing_required: list[str] = []
    missing_priority: list[str] = []
    for iid, item in items.items():
        if iid in hidden:
            continue
        group = groups.get(item.get("group", ""))
        if group is None:
            empty = is_empty(kept.get(iid)) and iid not in type_errors
            if empty and item.get("required"):
                missing_required.append(iid)
                out.add(iid, None, "item.required", "error", f"「{item['label']}」は必須です。", True)
            if empty and item.get("priority"):
                missing_priority.append(iid)
            continue
        key = row_key(item)
        group_rows = kept.get(group["id"]) if isinstance(kept.get(group["id"]), list) else []
        lacking = [i for i, r in enumerate(group_rows) if isinstance(r, dict) and is_empty(r.get(key))]
        if item.get("required") and lacking:
            missing_required.append(iid)
            for i in lacking:
                out.add(iid, i, "item.required", "error",
                        f"{_row_prefix(group, i)}「{item['label']}」は必須です。", True)
        if item.get("priority") and (lacking or not group_rows):
            missing_priority.append(iid)

    # 6. rules ------------------------------------------------------------------------------------------
    notifiable = True
    for rule in defn.get("rules", []):
        kind, p, rid, sev = rule["kind"], rule["params"], rule["id"], rule["severity"]
        if kind == "date_order":
            _date_order(rule, ctx, items, groups, today, out)
        elif kind in ("required_if", "expected_if"):
            if not evaluate_condition(p["when"], ctx):
                continue
            for ref in p["items"]:
                if ref in hidden or not _is_missing(ref, items, kept, type_errors):
                    continue
                label = items[ref]["label"]
                if kind == "required_if" and ref not in missing_required:
                    missing_required.append(ref)
                out.add(ref, None, rid, sev, render_text(rule["message"], label=label), kind == "required_if")
        elif kind == "at_least_one":
            if "when" in p and not evaluate_condition(p["when"], ctx):
                continue
            if not evaluate_condition({"any": p["group"], "where": p["where"]}, ctx):
                out.add(p.get("item"), None, rid, sev, render_text(rule["message"]), True)
        elif kind == "consistency_warning":
            if "when" in p and not evaluate_condition(p["when"], ctx):
                continue
            left, right = evaluate_condition(p["left"], ctx), evaluate_condition(p["right"], ctx)
            broken = (left != right) if p["relation"] == "iff" else (left and not right)
            if broken:
                out.add(p.get("item"), None, rid, sev, render_text(rule["message"]))
        elif kind == "max_repeat":
            count = len(rows.get(p["group"], []))
            if count > p["max"]:
                out.add(p["group"], None, rid, sev, render_text(rule["message"], max=p["max"], count=count))
        elif kind == "not_notifiable_if_empty":
            if is_empty(visible_clean.get(p["item"])):
                notifiable = False
                out.add(None, None, rid, sev, render_text(rule["message"], label=items[p["item"]]["label"]), True)

    # 7. compose ------------------------------------------------------------------------------------------
    result.values = kept
    result.hidden = sorted(hidden, key=list(items).index)
    result.missing_required = missing_required
    result.missing_priority = missing_priority
    result.notifiable = notifiable
    confirm_errors = 0
    for msg, completeness in out.found:
        if msg.severity == "error":
            confirm_errors += 1
        if stage == "draft" and completeness and msg.severity == "error":
            demoted = "warning" if msg.rule_id and msg.item_id is None else "info"
            msg = Message(msg.item_id, msg.row, msg.rule_id, demoted, msg.text_ja)
        {"error": result.errors, "warning": result.warnings}.get(msg.severity, result.infos).append(msg)
    result.ok_to_confirm = confirm_errors == 0
    return result


def _clip(text: str, limit: int = 60) -> str:
    text = re.sub(r"[\x00-\x1f\x7f]", "?", text)
    return text if len(text) <= limit else text[:limit] + "…"


def _is_missing(ref: str, items: dict[str, Any], kept: dict[str, Any], type_errors: dict[str, Message]) -> bool:
    item = items[ref]
    if item.get("group"):
        rows = kept.get(item["group"])
        key = row_key(item)
        return not (isinstance(rows, list) and any(isinstance(r, dict) and not is_empty(r.get(key)) for r in rows))
    return is_empty(kept.get(ref)) and ref not in type_errors


def _add_suggestion(suggestions: dict[str, dict[str, Any]], item: dict[str, Any], code: str, reason: str,
                    rule: dict[str, Any], applied: bool) -> None:
    entry = suggestions.setdefault(item["id"], {"value": [] if item["type"] == "multi_enum" else None,
                                                "reason_ja": "", "items": []})
    if item["type"] == "multi_enum":
        if code not in entry["value"]:
            entry["value"].append(code)
    else:
        entry["value"] = code
    entry["reason_ja"] = "／".join(filter(None, [entry["reason_ja"], reason]))
    entry["items"].append({"value": code, "label": option_label(item, code) or code, "reason_ja": reason,
                           "rule_id": rule["id"], "mode": rule["params"]["mode"], "applied": applied})


def _check_group(group: dict[str, Any], defn: dict[str, Any], value: Any, clean_rows: list[dict[str, Any]],
                 out: _Collector) -> Any:
    """Type-check a repeat group's rows; fill ``clean_rows`` (row dicts keyed by full item id, plus the row
    index under ``__index__``); return the value to keep (empty rows and empty fields dropped)."""
    gid = group["id"]
    if not isinstance(value, list):
        out.add(gid, None, "group.structure", "error", f"「{group['label']}」の形式が正しくありません（一覧が必要です）。")
        return value
    members = {row_key(item): item for item in defn.get("items", []) if item.get("group") == gid}
    kept_rows: list[Any] = []
    for raw in value:
        if isinstance(raw, Mapping):
            row = {str(k): v for k, v in raw.items() if not (is_empty(v) and not (isinstance(v, str) and v))}
            if row:
                kept_rows.append(row)
        elif not is_empty(raw):
            kept_rows.append(raw)
    for index, row in enumerate(kept_rows):
        if index >= MAX_ROWS_CHECKED:
            out.add(gid, None, "group.structure", "error", f"「{group['label']}」の件数が多すぎます（{len(kept_rows)}件）。")
            break
        prefix = _row_prefix(group, index)
        if not isinstance(row, dict):
            out.add(gid, index, "group.structure", "error", f"{prefix}「{group['label']}」の行の形式が正しくありません。")
            continue
        clean_row: dict[str, Any] = {"__index__": index}
        for key, cell in row.items():
            item = members.get(key)
            if item is None:
                out.add(gid, index, "group.structure", "error", f"{prefix}「{group['label']}」に不明な欄「{_clip(key)}」があります。")
                continue
            if is_empty(cell):
                continue
            checked, problem = check_value(item, cell)
            if problem:
                out.add(item["id"], index, "item.type", "error", prefix + problem)
            else:
                clean_row[item["id"]] = checked
        clean_rows.append(clean_row)
    if len(kept_rows) > group["max"] and not any(
        r["kind"] == "max_repeat" and r["params"]["group"] == gid for r in defn.get("rules", [])
    ):
        out.add(gid, None, "group.structure", "error", f"「{group['label']}」は最大{group['max']}件までです。")
    return kept_rows


def _date_order(rule: dict[str, Any], ctx: Context, items: dict[str, Any], groups: dict[str, Any], today: date,
                out: _Collector) -> None:
    levels: list[list[tuple[str, int | None, str | None, date]]] = []
    for level in rule["params"]["chain"]:
        refs = level if isinstance(level, list) else [level]
        entries: list[tuple[str, int | None, str | None, date]] = []
        for ref in refs:
            if ref == TODAY:
                entries.append((TODAY, None, None, today))
                continue
            group = items[ref].get("group")
            if group:
                for row in ctx.rows.get(group, []):
                    if isinstance(row.get(ref), date):
                        entries.append((ref, row["__index__"], group, row[ref]))
            elif isinstance(ctx.values.get(ref), date):
                entries.append((ref, None, None, ctx.values[ref]))
        levels.append(entries)

    def label(ref: str) -> str:
        return "今日" if ref == TODAY else items[ref]["label"]

    for i, earlier in enumerate(levels):
        for later in levels[i + 1:]:
            for a_ref, a_row, a_group, a_date in earlier:
                for b_ref, b_row, b_group, b_date in later:
                    if a_ref == b_ref and a_row == b_row:
                        continue
                    if a_group and a_group == b_group and a_row != b_row:
                        continue  # rows of one repeat group are compared with themselves only
                    if a_date <= b_date:
                        continue
                    anchor, row, group = (a_ref, a_row, a_group) if b_ref == TODAY else (b_ref, b_row, b_group)
                    if row is None:
                        row, group = (a_row, a_group) if a_row is not None else (b_row, b_group)
                    text = render_text(rule["message"], a=label(a_ref), b=label(b_ref))
                    out.add(anchor, row, rule["id"], rule["severity"], _row_prefix(groups.get(group or ""), row) + text)
