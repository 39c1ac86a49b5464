"""POSTed form fields → values (docs/contracts.md §1).

Field names: ``<item id>`` (multi_enum: the key repeated once per checked code), ``<item id>__unit`` for the
unit of an age (``years``/``months``, default years), and ``<group>-<row>-<key>`` for repeat-group cells
(``tests-0-method`` … ``tests-3-result_date``). Input is a ``dict[str, list[str]]`` (or str values) or anything
with ``getlist(key)`` and ``keys()`` (a Django QueryDict). Unknown field names (``action``, ``lock_version``,
…) are ignored.

Normalisation: surrounding whitespace is stripped; dates go through ``jpinput.normalise_date`` — the parser the
page's as-you-type endpoint uses — so ``2022/9/27``, ``20220927``, ``R4.9.27``, ``令和4年9月27日`` and full-width
digits become ISO; フリガナ (``kana`` items) becomes full-width katakana (``jpinput.to_fullwidth_katakana``:
hiragana, half-width kana, one full-width space); postal codes take their one form ``123-4567``
(``jpinput.normalise_postal``); phone numbers, integers and ages are NFKC-normalised (full-width digits → ASCII,
every hyphen-like character → ``-``); everything else is kept exactly as typed. Empty → absent.
A value that still doesn't fit its type is kept as typed: evaluate() reports it (for a date, with the parser's
own message), the user sees what they typed.
Names (items ``*.name`` / ``*_name``) keep one full-width space between parts, as HER-SYS and the paper form write them.
The returned errors are only about the request itself (a row beyond the group's slots, several values for a
single-value field, a value over the hard size limit — kept, so the page shows it again, but the request must
not be saved); they are Message objects (rule_id ``input.*``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jpinput import normalise_date, normalise_postal, to_fullwidth_katakana

from .definition import groups_by_id, row_key
from .engine import Message
from .valuetypes import AGE_UNITS, DEFAULT_MAX_LENGTH, normalise_digits

HARD_LIMIT = 20000
_INT = re.compile(r"^-?\d{1,12}$")
_SPACES = re.compile(r"[ \t\u3000]+")


def _getlist(data: Any, key: str) -> list[str]:
    if hasattr(data, "getlist"):
        raw = data.getlist(key)
    elif isinstance(data, Mapping):
        raw = data.get(key, [])
    else:
        return []
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        raw = [raw]
    out = []
    for value in raw:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is None:
            continue
        out.append(value if isinstance(value, str) else str(value))
    return out


def _keys(data: Any) -> list[str]:
    try:
        return [k for k in data.keys() if isinstance(k, str)]
    except (AttributeError, TypeError):
        return []


def _is_name(item: dict[str, Any]) -> bool:
    last = item["id"].rsplit(".", 1)[-1]
    return last == "name" or last.endswith("_name")


def _normalise(item_type: str, text: str, is_name: bool = False) -> Any:
    text = text.strip()
    if not text:
        return None
    if item_type == "date":
        iso, _problem = normalise_date(text)  # the problem is reported by evaluate() (valuetypes.check_value)
        return iso or text
    if item_type == "kana":
        return to_fullwidth_katakana(text) or text
    if item_type == "postal_code":
        return normalise_postal(text) or re.sub(r"\s+", "", normalise_digits(text))
    if item_type == "phone":
        return re.sub(r"\s+", "", normalise_digits(text))
    if item_type == "text" and is_name:
        return _SPACES.sub("\u3000", text)  # 山田 太郎 / 山田　　太郎 → 山田　太郎
    if item_type in ("integer", "age"):
        digits = re.sub(r"\s+", "", normalise_digits(text))
        return int(digits) if _INT.match(digits) else text
    return text


def parse_form_input(defn: dict[str, Any], data: Any) -> tuple[dict[str, Any], list[Message]]:
    """Return (values, request errors). Never raises on any input."""
    values: dict[str, Any] = {}
    errors: list[Message] = []
    groups = groups_by_id(defn)

    def one(item: dict[str, Any], name: str, row: int | None = None) -> str | None:
        raw = _getlist(data, name)
        usable = [v for v in raw if v.strip()]
        if any(len(v) > HARD_LIMIT for v in usable):
            # Refused (nothing is saved) but not dropped: the page shows it again, whole, to be shortened.
            longest = max(len(v) for v in usable)
            limit = item.get("max_length") or DEFAULT_MAX_LENGTH.get(item.get("type", ""), HARD_LIMIT)
            errors.append(Message(item["id"], row, "input.too_long", "error",
                                  f"「{item['label']}」が長すぎるため保存していません（現在{longest}文字、{limit}文字以内）。"
                                  "入力した文字は消さずに残しています。"))
            return max(usable, key=len)
        if len(usable) > 1:
            errors.append(Message(item["id"], row, "input.multiple", "error",
                                  f"「{item['label']}」に複数の値が送信されました。最初の値を使います。"))
        return usable[0] if usable else None

    for item in defn.get("items", []):
        if item.get("group"):
            continue
        iid, item_type = item["id"], item["type"]
        if item_type == "multi_enum":
            raw = _getlist(data, iid)
            if any(len(v) > HARD_LIMIT for v in raw):
                errors.append(Message(iid, None, "input.too_long", "error",
                                      f"「{item['label']}」の値が長すぎるため受け付けませんでした。"))
                continue
            codes: list[str] = []
            for v in raw:
                v = v.strip()
                if v and v not in codes:
                    codes.append(v)
            if codes:
                values[iid] = codes
            continue
        text = one(item, iid)
        if text is None:
            continue
        value = _normalise(item_type, text, _is_name(item))
        if value is None:
            continue
        if item_type == "age":
            unit_raw = _getlist(data, iid + "__unit")
            unit = unit_raw[0].strip() if unit_raw and unit_raw[0].strip() in AGE_UNITS else "years"
            value = {"value": value, "unit": unit}
        values[iid] = value

    for gid, group in groups.items():
        members = {row_key(item): item for item in defn.get("items", []) if item.get("group") == gid}
        pattern = re.compile(rf"^{re.escape(gid)}-(\d+)-(.+)$")
        too_many = unknown = False
        for key in _keys(data):
            match = pattern.match(key)
            if not match or not any(v.strip() for v in _getlist(data, key)):
                continue
            index, field = int(match.group(1)) if len(match.group(1)) < 6 else 10**6, match.group(2)
            too_many = too_many or index >= group["max"]
            unknown = unknown or field not in members
        if too_many:
            errors.append(Message(gid, None, "input.too_many_rows", "error",
                                  f"「{group['label']}」は最大{group['max']}件までです。"))
        if unknown:
            errors.append(Message(gid, None, "input.unknown_field", "error", f"「{group['label']}」に不明な欄があります。"))
        rows: list[dict[str, Any]] = []
        for index in range(group["max"]):
            row: dict[str, Any] = {}
            for key, item in members.items():
                text = one(item, f"{gid}-{index}-{key}", index)
                value = _normalise(item["type"], text, _is_name(item)) if text is not None else None
                if value is not None:
                    row[key] = value
            if row:
                rows.append(row)
        if rows:
            values[gid] = rows
    return values, errors
