"""What changed between two definitions, and moving a draft's values from one to the other."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .conditions import is_empty
from .definition import ensure_valid, groups_by_id, items_by_id, row_key
from .engine import evaluate
from .valuetypes import INVALID, check_value

_FLAG_TEXT = {
    "required": ("必須になりました", "必須ではなくなりました"),
    "priority": ("優先項目（Q&A 5）になりました", "優先項目ではなくなりました"),
    "medical_judgement": ("医師確認の項目になりました", "医師確認の項目ではなくなりました"),
}
_FIELD_TEXT = {
    "label": "名称", "type": "型", "section": "区分", "group": "繰り返しグループ", "visible_when": "表示条件",
    "help": "説明", "emr_source": "電子カルテの取得元", "hersys_path": "HER-SYS API パス", "link_id": "linkId",
    "max_length": "最大文字数", "min": "最小値", "max": "最大値",
}
_RULE_FIELD_TEXT = {"kind": "種類", "params": "条件", "severity": "重大度", "message": "メッセージ", "source": "出典"}


@dataclass(frozen=True)
class Change:
    """One difference. ``kind``: item_added | item_removed | item_changed | rule_added | rule_removed |
    rule_changed | section_added | section_removed | section_changed | group_added | group_removed |
    group_changed | definition_changed. ``target`` is the id concerned."""

    kind: str
    target: str
    text_ja: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text_ja


@dataclass
class MigrationReport:
    from_version: str
    to_version: str
    changes: list[Change] = field(default_factory=list)
    #: values of items the new definition no longer has: [{"item_id", "label", "value"}] (patient data!)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    #: kept values that do not fit the new definition (type or value set): [{"item_id", "row", "reason_ja"}]
    invalid: list[dict[str, Any]] = field(default_factory=list)
    #: items required in the new definition and not in the old one
    newly_required: list[str] = field(default_factory=list)
    #: required items (new definition) without a value after migration
    missing_required: list[str] = field(default_factory=list)
    text_ja: list[str] = field(default_factory=list)

    @property
    def dropped_item_ids(self) -> list[str]:
        return [d["item_id"] for d in self.dropped]

    def without_values(self) -> MigrationReport:
        """A copy without patient values (``dropped[*].value`` removed), for audit records and logs."""
        redacted = copy.copy(self)
        redacted.dropped = [{k: v for k, v in d.items() if k != "value"} for d in self.dropped]
        return redacted


def _jsonish(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _by_id(entries: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in entries or [] if isinstance(e, dict) and "id" in e}


def _item_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    texts: list[str] = []
    details: dict[str, Any] = {}
    for flag, (on, off) in _FLAG_TEXT.items():
        if bool(old.get(flag)) != bool(new.get(flag)):
            texts.append(on if new.get(flag) else off)
            details[flag] = [bool(old.get(flag)), bool(new.get(flag))]
    for key, name in _FIELD_TEXT.items():
        if _jsonish(old.get(key)) != _jsonish(new.get(key)):
            details[key] = [old.get(key), new.get(key)]
            if key == "label":
                texts.append(f"名称が「{old.get('label')}」から「{new.get('label')}」に変わりました")
            elif key == "type":
                texts.append(f"型が {old.get('type')} から {new.get('type')} に変わりました")
            else:
                texts.append(f"{name}が変わりました")
    old_values = {v["code"]: v["label"] for v in old.get("values", [])}
    new_values = {v["code"]: v["label"] for v in new.get("values", [])}
    added = [c for c in new_values if c not in old_values]
    removed = [c for c in old_values if c not in new_values]
    relabelled = [c for c in new_values if c in old_values and old_values[c] != new_values[c]]
    if added:
        texts.append("選択肢を追加：" + "、".join(f"「{new_values[c]}」" for c in added))
    if removed:
        texts.append("選択肢を削除：" + "、".join(f"「{old_values[c]}」" for c in removed))
    if relabelled:
        texts.append("選択肢の名称を変更：" + "、".join(f"「{old_values[c]}」→「{new_values[c]}」" for c in relabelled))
    if added or removed or relabelled:
        details["values"] = {"added": added, "removed": removed, "relabelled": relabelled}
    elif [v["code"] for v in old.get("values", [])] != [v["code"] for v in new.get("values", [])]:
        texts.append("選択肢の順序が変わりました")
        details["values"] = {"reordered": True}
    return texts, details


def diff_definitions(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference between two definitions, in a stable order, each with a Japanese description."""
    changes: list[Change] = []
    for key, name in (("form", "種類"), ("version", "版"), ("title", "名称"), ("catalog", "カタログ"), ("disease", "疾患")):
        if old.get(key) != new.get(key):
            changes.append(Change("definition_changed", key, f"様式の{name}：「{old.get(key)}」→「{new.get(key)}」",
                                  {key: [old.get(key), new.get(key)]}))

    for kind, key, noun in (("section", "sections", "区分"), ("group", "groups", "繰り返しグループ")):
        before, after = _by_id(old.get(key)), _by_id(new.get(key))
        for sid, entry in after.items():
            if sid not in before:
                changes.append(Change(f"{kind}_added", sid, f"{noun}「{entry.get('label')}」（{sid}）を追加"))
            elif _jsonish(before[sid]) != _jsonish(entry):
                fields = sorted(k for k in set(before[sid]) | set(entry) if before[sid].get(k) != entry.get(k))
                changes.append(Change(f"{kind}_changed", sid, f"{noun}「{entry.get('label')}」（{sid}）を変更："
                                      + "、".join(fields), {k: [before[sid].get(k), entry.get(k)] for k in fields}))
        for sid, entry in before.items():
            if sid not in after:
                changes.append(Change(f"{kind}_removed", sid, f"{noun}「{entry.get('label')}」（{sid}）を削除"))

    before_items, after_items = items_by_id(old), items_by_id(new)
    for iid, item in after_items.items():
        if iid not in before_items:
            flags = "（必須）" if item.get("required") else ""
            changes.append(Change("item_added", iid, f"項目「{item['label']}」（{iid}）を追加{flags}",
                                  {"required": bool(item.get("required"))}))
            continue
        texts, details = _item_changes(before_items[iid], item)
        if texts:
            changes.append(Change("item_changed", iid, f"項目「{item['label']}」（{iid}）：" + "、".join(texts), details))
    for iid, item in before_items.items():
        if iid not in after_items:
            changes.append(Change("item_removed", iid, f"項目「{item['label']}」（{iid}）を削除（入力済みの値は移行されません）"))

    before_rules, after_rules = _by_id(old.get("rules")), _by_id(new.get("rules"))
    for rid, rule in after_rules.items():
        if rid not in before_rules:
            changes.append(Change("rule_added", rid, f"ルール「{rid}」を追加：{rule['message']}"))
        elif _jsonish(before_rules[rid]) != _jsonish(rule):
            fields = [k for k in _RULE_FIELD_TEXT if _jsonish(before_rules[rid].get(k)) != _jsonish(rule.get(k))]
            changes.append(Change("rule_changed", rid, f"ルール「{rid}」の" + "・".join(_RULE_FIELD_TEXT[k] for k in fields)
                                  + "を変更", {k: [before_rules[rid].get(k), rule.get(k)] for k in fields}))
    for rid, rule in before_rules.items():
        if rid not in after_rules:
            changes.append(Change("rule_removed", rid, f"ルール「{rid}」を削除：{rule['message']}"))
    return changes


def migrate_values(old_defn: dict[str, Any], new_defn: dict[str, Any], values: Any
                   ) -> tuple[dict[str, Any], MigrationReport]:
    """Move a draft's values to a new definition. Values of items that still exist are kept unchanged (even
    if they no longer fit — they are listed in ``report.invalid`` and evaluate() flags them); values of
    removed items are left out of the result and listed in ``report.dropped`` (with the value, so nothing
    is silently lost). Never raises on any ``values``."""
    ensure_valid(new_defn)
    report = MigrationReport(str(old_defn.get("version", "")), str(new_defn.get("version", "")),
                             changes=diff_definitions(old_defn, new_defn))
    values = values if isinstance(values, dict) else {}
    old_items, new_items = items_by_id(old_defn), items_by_id(new_defn)
    new_groups = groups_by_id(new_defn)
    migrated: dict[str, Any] = {}

    def label(iid: str) -> str:
        return (new_items.get(iid) or old_items.get(iid) or {}).get("label", iid)

    for key, value in values.items():
        if is_empty(value):
            continue
        if key in new_groups:
            members = {row_key(i): i for i in new_defn["items"] if i.get("group") == key}
            rows_out = []
            for index, row in enumerate(value if isinstance(value, list) else []):
                if not isinstance(row, dict):
                    rows_out.append(row)
                    continue
                kept_row = {}
                for field_key, cell in row.items():
                    if field_key in members:
                        kept_row[field_key] = copy.deepcopy(cell)
                        checked, problem = check_value(members[field_key], cell) if not is_empty(cell) else (None, None)
                        if checked is INVALID and problem:
                            report.invalid.append({"item_id": members[field_key]["id"], "row": index, "reason_ja": problem})
                    elif not is_empty(cell):
                        report.dropped.append({"item_id": f"{key}.{field_key}", "row": index,
                                               "label": label(f"{key}.{field_key}"), "value": copy.deepcopy(cell)})
                if kept_row:
                    rows_out.append(kept_row)
            if not isinstance(value, list):
                rows_out = value
            if rows_out:
                migrated[key] = rows_out
            continue
        item = new_items.get(key)
        if item is None or item.get("group"):
            report.dropped.append({"item_id": key, "row": None, "label": label(key), "value": copy.deepcopy(value)})
            continue
        migrated[key] = copy.deepcopy(value)
        checked, problem = check_value(item, value)
        if checked is INVALID and problem:
            report.invalid.append({"item_id": key, "row": None, "reason_ja": problem})

    report.newly_required = [iid for iid, item in new_items.items()
                             if item.get("required") and not (old_items.get(iid) or {}).get("required")]
    # Requiredness does not depend on the date unless a condition compares with "$today"; a fixed far date
    # keeps this pure. Pre-fills (e.g. age ≥ 65) are not applied to the migrated values.
    check = evaluate(new_defn, migrated, today=date(9999, 12, 31), stage="confirm")
    report.missing_required = [iid for iid in check.missing_required if iid not in check.derived]

    report.text_ja = [f"様式を「{report.from_version}」から「{report.to_version}」に移行しました。"]
    report.text_ja += [c.text_ja for c in report.changes if c.kind != "definition_changed"]
    for entry in report.dropped:
        report.text_ja.append(f"「{entry['label']}」（{entry['item_id']}）は新しい様式にないため移行されませんでした。")
    for entry in report.invalid:
        report.text_ja.append(f"確認が必要：{entry['reason_ja']}")
    for iid in report.missing_required:
        newly = "（新しく必須になった項目）" if iid in report.newly_required else ""
        report.text_ja.append(f"必須項目「{label(iid)}」が未入力です{newly}。")
    return migrated, report
