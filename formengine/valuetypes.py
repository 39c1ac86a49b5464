"""Item types: checking one value against its item, with Japanese messages. Never raises on any input."""
from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from jpinput import check_hersys_text, check_kana, normalise_date

ITEM_TYPES = ("text", "kana", "enum", "multi_enum", "date", "integer", "phone", "postal_code", "prefecture", "age")
AGE_UNITS = ("years", "months")
AGE_UNIT_LABELS = {"years": "歳", "months": "か月"}

#: JIS X 0401 prefecture codes.
PREFECTURES: tuple[tuple[str, str], ...] = tuple(
    (f"{i:02d}", name)
    for i, name in enumerate(
        (
            "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
            "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
            "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
            "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
            "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
        ),
        start=1,
    )
)
PREFECTURE_CODES = {code for code, _ in PREFECTURES}

#: Default maximum length per string type (an item's `max_length` overrides it).
DEFAULT_MAX_LENGTH = {"text": 1000, "kana": 200, "phone": 20, "postal_code": 8}
DEFAULT_INTEGER_RANGE = (0, 100000)
MIN_DATE = date(1870, 1, 1)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KANA = re.compile(r"^[\u30a1-\u30fa\u30fc\u30fd\u30fe\u30fb 　]+$")
_PHONE = re.compile(r"^(0\d{9,10}|\+\d{10,15})$")
_POSTAL = re.compile(r"^\d{3}-?\d{4}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HYPHENS = "‐‑‒–—―−ー－ｰ"


class Invalid:
    """Marker for a value that failed its type check (kept as data, ignored by rules)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID = Invalid()


def options_of(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, label) pairs of an enum / multi_enum / prefecture item."""
    if item.get("type") == "prefecture":
        return list(PREFECTURES)
    out = []
    for option in item.get("values") or []:
        if isinstance(option, dict) and isinstance(option.get("code"), str):
            out.append((option["code"], str(option.get("label", option["code"]))))
    return out


def option_label(item: dict[str, Any], code: Any) -> str | None:
    for c, label in options_of(item):
        if c == code:
            return label
    return None


def parse_iso_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def normalise_digits(text: str) -> str:
    """NFKC (full-width digits → ASCII) and every hyphen-like character → '-'."""
    text = unicodedata.normalize("NFKC", text)
    return "".join("-" if ch in _HYPHENS else ch for ch in text)


def _string_check(item: dict[str, Any], value: Any, label: str) -> str | None:
    if not isinstance(value, str):
        return f"「{label}」は文字列で入力してください。"
    limit = item.get("max_length") or DEFAULT_MAX_LENGTH.get(item.get("type", "text"), 1000)
    if len(value) > limit:
        return f"「{label}」は{limit}文字以内で入力してください（現在{len(value)}文字）。"
    if _CONTROL.search(value):
        return f"「{label}」に使用できない制御文字が含まれています。"
    return None


def check_value(item: dict[str, Any], value: Any) -> tuple[Any, str | None]:
    """Return (clean value, None) or (INVALID, Japanese error). Clean values: str, list[str], date, int,
    {"value": int, "unit": "years"|"months"}."""
    item_type = item.get("type")
    label = str(item.get("label") or item.get("id") or "")
    if item_type in ("text", "kana", "phone", "postal_code"):
        problem = _string_check(item, value, label)
        if problem:
            return INVALID, problem
        if item_type == "kana" and not _KANA.match(value):
            return INVALID, check_kana(value) or f"「{label}」は全角カタカナで入力してください。"
        if item_type in ("text", "kana"):
            # Characters HER-SYS cannot take (emoji, outside Windows-31J): said, never dropped (jpinput.kana).
            problems = check_hersys_text(value)
            if problems:
                return INVALID, f"「{label}」：{problems[0]}"
        if item_type == "phone" and not _PHONE.match(value.replace("-", "")):
            return INVALID, f"「{label}」の電話番号の形式が正しくありません（例：03-1234-5678）。"
        if item_type == "postal_code" and not _POSTAL.match(value):
            return INVALID, f"「{label}」の郵便番号は7桁の数字で入力してください（例：100-0001）。"
        return value, None
    if item_type in ("enum", "prefecture"):
        if not isinstance(value, str):
            return INVALID, f"「{label}」は選択肢から選んでください。"
        if value not in {c for c, _ in options_of(item)}:
            return INVALID, f"「{label}」に選択肢にない値があります：{_short(value)}"
        return value, None
    if item_type == "multi_enum":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return INVALID, f"「{label}」は選択肢から選んでください。"
        codes = {c for c, _ in options_of(item)}
        unknown = [v for v in value if v not in codes]
        if unknown:
            return INVALID, f"「{label}」に選択肢にない値があります：{'、'.join(_short(v) for v in unknown[:5])}"
        if len(set(value)) != len(value):
            return INVALID, f"「{label}」に同じ選択肢が重複しています。"
        return list(value), None
    if item_type == "date":
        parsed = parse_iso_date(value)
        if parsed is None:
            # Say why with the parser the page uses while typing (jpinput.dates), e.g. 「2月は28日までです…」.
            iso, problem = normalise_date(value) if isinstance(value, str) else (None, None)
            if iso:
                return INVALID, f"「{label}」はYYYY-MM-DD形式で指定してください（「{_short(value)}」は{iso}）。"
            if problem:
                return INVALID, f"「{label}」：{problem}（入力：{_short(value)}）"
            return INVALID, f"「{label}」は正しい日付（YYYY-MM-DD、2021/1/10、R3.1.10 など）で入力してください：{_short(value)}"
        if parsed < MIN_DATE:
            return INVALID, f"「{label}」の日付が古すぎます：{value}"
        return parsed, None
    if item_type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return INVALID, f"「{label}」は整数で入力してください：{_short(value)}"
        low = item.get("min", DEFAULT_INTEGER_RANGE[0])
        high = item.get("max", DEFAULT_INTEGER_RANGE[1])
        if not low <= value <= high:
            return INVALID, f"「{label}」は{low}以上{high}以下で入力してください。"
        return value, None
    if item_type == "age":
        return _check_age(value, label)
    return INVALID, f"「{label}」の型「{_short(item_type)}」は使えません。"


def _check_age(value: Any, label: str) -> tuple[Any, str | None]:
    if not isinstance(value, dict) or set(value) - {"value", "unit"}:
        return INVALID, f"「{label}」は年齢（歳または0歳の場合は月齢）で入力してください。"
    number, unit = value.get("value"), value.get("unit", "years")
    if isinstance(number, bool) or not isinstance(number, int) or unit not in AGE_UNITS:
        return INVALID, f"「{label}」は年齢（歳または0歳の場合は月齢）で入力してください。"
    if unit == "years" and not 0 <= number <= 150:
        return INVALID, f"「{label}」は0〜150歳で入力してください。"
    if unit == "months" and not 0 <= number <= 11:
        return INVALID, f"「{label}」の月齢は0〜11か月で入力してください（1歳以上は歳で）。"
    return {"value": number, "unit": unit}, None


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = _CONTROL.sub("?", text)
    return text if len(text) <= limit else text[:limit] + "…"


def age_at(birth: date, at: date) -> dict[str, Any] | None:
    """Age at a date: whole years, or whole months when under one year. None if `at` precedes `birth`."""
    if at < birth:
        return None
    months = (at.year - birth.year) * 12 + (at.month - birth.month)
    if at.day < birth.day:
        months -= 1
    if months < 12:
        return {"value": max(months, 0), "unit": "months"}
    return {"value": months // 12, "unit": "years"}


def age_label(age: Any) -> str:
    if isinstance(age, dict) and isinstance(age.get("value"), int):
        return f"{age['value']}{AGE_UNIT_LABELS.get(age.get('unit', 'years'), '歳')}"
    return ""
