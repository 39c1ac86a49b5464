"""Normalisers for Japanese EMR values.

Each normaliser returns ``(value, warning)``: ``value`` is ``None`` when the input does not support a value
(never a guess); ``warning`` is a Japanese message for the user, or ``None``. None of them raise.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone

import jaconv

from vocabulary import ids

JST = timezone(timedelta(hours=9))
FW_SPACE = "\u3000"
MAX_TEXT = 200

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_WS = re.compile(r"[\s\u3000]+")
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\u30fc\u2500\ufe63\uff70-"

Result = tuple[object | None, str | None]


def clean(value: object) -> str:
    """Text with control characters removed and outer whitespace trimmed ('' for None/non-text)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            return ""
    return _CTRL.sub("", value).strip(" \t\r\n\u3000")


def _unreadable(s: str) -> bool:
    return "\ufffd" in s


# --- script detection -------------------------------------------------------------------------------------------

def is_kana_text(s: str) -> bool:
    """True if s holds only kana (hiragana, katakana, half-width katakana), prolonged sound marks and spaces."""
    s = _WS.sub("", s)
    if not s:
        return False
    for ch in s:
        o = ord(ch)
        if 0x3041 <= o <= 0x309F or 0x30A0 <= o <= 0x30FF or 0xFF65 <= o <= 0xFF9F or ch in "・･ー－-":
            continue
        return False
    return True


def is_alphabetic_name(s: str) -> bool:
    """True if s is written in Latin letters only (romaji / a foreign name), half- or full-width."""
    s = _WS.sub("", unicodedata.normalize("NFKC", s))
    return bool(s) and all(("A" <= ch.upper() <= "Z") or ch in ".,'-" for ch in s)


def has_kanji(s: str) -> bool:
    for ch in s:
        o = ord(ch)
        if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF \
                or ch in "々〆〇ヶ":
            return True
    return False


# --- names ------------------------------------------------------------------------------------------------------

def _name_parts(family: str, given: str) -> list[str]:
    family, given = clean(family), clean(given)
    parts = [p for p in _WS.split(family) if p] if family else []
    if given:
        parts += [p for p in _WS.split(given) if p]
    return parts


def person_name(family: str, given: str = "") -> Result:
    """Kanji (or alphabetic) name as 'family<FW space>given'. Half-width kana become full-width."""
    parts = _name_parts(family, given)
    if not parts:
        return None, None
    joined = FW_SPACE.join(jaconv.h2z(p, kana=True, ascii=False, digit=False) for p in parts)
    if _unreadable(joined):
        return None, "氏名に読み取れない文字が含まれるため転記しませんでした"
    if len(joined) > MAX_TEXT:
        return None, "氏名が長すぎるため転記しませんでした"
    return joined, None


def kana_name(family: str, given: str = "") -> Result:
    """Kana name in full-width katakana ('family<FW space>given'), from katakana, hiragana or half-width kana."""
    parts = _name_parts(family, given)
    if not parts:
        return None, None
    out = []
    for p in parts:
        if not is_kana_text(p):
            return None, "カナ氏名にカナ以外の文字が含まれるため転記しませんでした"
        p = jaconv.h2z(p, kana=True, ascii=False, digit=False)
        p = jaconv.hira2kata(p)
        p = p.replace("－", "ー").replace("-", "ー")
        out.append(p)
    joined = FW_SPACE.join(out)
    if len(joined) > MAX_TEXT:
        return None, "カナ氏名が長すぎるため転記しませんでした"
    return joined, None


# --- dates ------------------------------------------------------------------------------------------------------

_ERAS = {"M": 1868, "T": 1912, "S": 1926, "H": 1989, "R": 2019,
         "明治": 1868, "大正": 1912, "昭和": 1926, "平成": 1989, "令和": 2019}
_HL7_TS = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.\d{1,4})?)?)?)?\s*([+-]\d{4})?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")
_SLASH = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_KANJI = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日")
_WAREKI = re.compile(r"^(明治|大正|昭和|平成|令和|[MTSHR])\s*(\d{1,2}|元)[年./-](\d{1,2})[月./-](\d{1,2})日?")


def _tz(s: str | None) -> timezone | None:
    if not s:
        return None
    if s == "Z":
        return UTC
    sign = -1 if s[0] == "-" else 1
    digits = s[1:].replace(":", "")
    try:
        return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))
    except (ValueError, IndexError):
        return None


def _mk(y: int, m: int, d: int, hh: str | None = None, mm: str | None = None, ss: str | None = None,
        tz: str | None = None) -> date | None:
    try:
        dt = datetime(y, m, d, int(hh or 0), int(mm or 0), int(ss or 0))
    except ValueError:
        return None
    zone = _tz(tz)
    if zone is not None and hh is not None:
        dt = dt.replace(tzinfo=zone).astimezone(JST)  # dates are Japanese calendar dates
    if not 1880 <= dt.year <= 2100:
        return None
    return dt.date()


def parse_date(value: object) -> Result:
    """Date (or timestamp, cut to its JST date) → ISO 'YYYY-MM-DD'. Partial or invalid dates give None."""
    s = unicodedata.normalize("NFKC", clean(value)) if isinstance(value, str) else clean(value)
    if not s:
        return None, None
    m = _HL7_TS.match(s)
    if m:
        d = _mk(int(m[1]), int(m[2]), int(m[3]), m[4], m[5], m[6], m[7])
    elif (m := _ISO.match(s)) is not None:
        d = _mk(int(m[1]), int(m[2]), int(m[3]), m[4], m[5], m[6], m[7])
    elif (m := _SLASH.match(s)) is not None:
        d = _mk(int(m[1]), int(m[2]), int(m[3]))
    elif (m := _KANJI.match(s)) is not None:
        d = _mk(int(m[1]), int(m[2]), int(m[3]))
    elif (m := _WAREKI.match(s)) is not None:
        year = 1 if m[2] == "元" else int(m[2])
        d = _mk(_ERAS[m[1]] + year - 1, int(m[3]), int(m[4]))
    else:
        d = None
    if d is None:
        return None, f"日付として解釈できない値のため転記しませんでした（{s[:30]}）"
    return d.isoformat(), None


# --- contact data -----------------------------------------------------------------------------------------------

def postal_code(value: object) -> Result:
    s = unicodedata.normalize("NFKC", clean(value))
    if not s:
        return None, None
    s = s.replace("〒", "")
    digits = re.sub(r"[\s" + re.escape(_DASHES) + r"]", "", s)
    if not re.fullmatch(r"\d{7}", digits):
        return None, f"郵便番号が7桁でないため転記しませんでした（{s[:20]}）"
    return digits, None


def phone(value: object) -> Result:
    s = unicodedata.normalize("NFKC", clean(value))
    if not s:
        return None, None
    s = re.sub(r"(?i)^tel:", "", s.strip())
    s = s.translate({ord(c): "-" for c in _DASHES + "()（）"})
    s = re.sub(r"\s+", "", s)
    # the Japanese country code written in front: +81-90-..., +81(0)90-..., 0081-3-... → the domestic form 090-...
    m = re.fullmatch(r"(?:\+|00)81-*(?:0-*)?([1-9][\d-]*)", s)
    if m:
        s = "0" + m.group(1)
    if not re.fullmatch(r"\+?[\d-]+", s):
        return None, f"電話番号として解釈できない値のため転記しませんでした（{s[:20]}）"
    s = re.sub(r"-{2,}", "-", s).strip("-")
    n = len(re.sub(r"\D", "", s))
    if not 9 <= n <= 13:
        return None, f"電話番号の桁数が不正なため転記しませんでした（{s[:20]}）"
    return s, None


_POSTAL_PREFIX = re.compile(r"^〒\s*[0-9０-９]{3}[-－ー−‐]?[0-9０-９]{4}[\s\u3000]*")


def address(value: object) -> Result:
    """Address text with full-width letters/digits (as HER-SYS forms use) and single full-width spaces."""
    s = clean(value)
    if not s:
        return None, None
    if _unreadable(s):
        return None, "住所に読み取れない文字が含まれるため転記しませんでした"
    s = _POSTAL_PREFIX.sub("", s)
    s = jaconv.h2z(s, kana=True, ascii=True, digit=True)
    s = _WS.sub(FW_SPACE, s).strip(FW_SPACE)
    if not s:
        return None, None
    if len(s) > MAX_TEXT:
        return None, "住所が長すぎるため転記しませんでした"
    return s, None


def join_address(parts: list[str]) -> str:
    """Japanese-order address parts joined without duplicating a part the next one already starts with."""
    out = ""
    for p in (clean(x) for x in parts):
        if not p:
            continue
        if out and p.startswith(out):
            out = p
        elif not out.endswith(p):
            out += p
    return out


def sex(value: object) -> Result:
    s = unicodedata.normalize("NFKC", clean(value)).strip().lower()
    if not s:
        return None, None
    male, female = ids.SEX_MALE, ids.SEX_FEMALE
    table = {"m": male, "male": male, "男": male, "男性": male, "1": male,
             "f": female, "female": female, "女": female, "女性": female, "2": female}
    if s in table:
        return table[s], None
    return None, "性別が男・女以外（または不明）のため転記しませんでした"


def text(value: object) -> Result:
    s = clean(value)
    if not s:
        return None, None
    if _unreadable(s):
        return None, "読み取れない文字が含まれるため転記しませんでした"
    if len(s) > MAX_TEXT:
        return None, "値が長すぎるため転記しませんでした"
    return s, None
