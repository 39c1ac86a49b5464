"""Dates as staff type them: 2021-01-10, 2021/1/10, 2021.1.10, 20210110, R3.1.10, r3-1-10, R030110,
令和3年1月10日, 令和元年5月1日, H31.4.30, 平成31年4月30日, S64.1.7, full-width digits and separators, spaces around.

``parse_date`` returns one of three results, each with ``ok``, ``incomplete`` and a Japanese ``message``:

- ``ParsedDate``: a real date (``message`` is a non-blocking note, e.g. a date after ``today``);
- ``IncompleteDate``: what was typed so far can still become a date (``R3.1``, ``2021/1/``, ``H1.1.1`` on the
  way to ``H1.1.18``). ``message`` says what is missing or wrong if the user stops here; a page shows it only
  when the field is left, never while typing. Every prefix of an accepted input is either incomplete or a date;
- ``InvalidDate``: no continuation can make it a date (``2021/2/30``, ``H31.5.1``, ``R1.4.30``).

Eras come from japanera's table (``ERA_DATA_GENERAL``), not from a table written here. 和暦 month and day are
read as Gregorian, which Japan has used since 明治6年1月1日 (1873-01-01); earlier dates are refused.
"""
from __future__ import annotations

import calendar
import itertools
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from japanera import ERA_DATA_GENERAL, Era

#: The first day of the Gregorian calendar in Japan (明治6年1月1日); 和暦 dates before it were lunisolar.
MIN_DATE = date(1873, 1, 1)
#: Longer text is not a date; refusing it early keeps every step cheap.
MAX_INPUT_LENGTH = 64

#: The eras since the Meiji restoration, from japanera (oldest first): kanji 明治…令和, initial M/T/S/H/R.
MODERN_ERAS: tuple[Era, ...] = tuple(
    era for era in ERA_DATA_GENERAL if era.since >= date(1868, 1, 1) and era.kanji and era.english)
_ERA_BY_KANJI = {era.kanji: era for era in MODERN_ERAS}
_ERA_BY_LETTER = {era.english_head.upper(): era for era in MODERN_ERAS}
assert len(_ERA_BY_LETTER) == len(MODERN_ERAS), "two modern eras share an initial"

MSG_UNREADABLE = "日付として読み取れません（例：2021/1/10、20210110、R3.1.10、令和3年1月10日）。"
MSG_TOO_OLD = "1873年（明治6年）1月1日より前の日付は入力できません。"
MSG_WESTERN_YEAR = "年は西暦4桁で入力するか、元号を付けてください（例：2021/1/10、R3.1.10）。"
MSG_ERA_YEAR = "元号の年は1（元年）から2桁までで入力してください（例：R3.1.10、令和元年5月1日）。"
MSG_MONTH = "月は1〜12で入力してください。"
MSG_DAY = "日は1〜31で入力してください。"
MSG_COMPACT = "数字だけの場合は年4桁・月2桁・日2桁の8桁で入力してください（例：20210110）。"
MSG_ERA_COMPACT = "元号の後に数字だけを続ける場合は6桁で入力してください（例：R030110）。"
HINT_START = "年・月・日を入力してください（例：R3.1.10）。"
HINT_MONTH_DAY = "月と日も入力してください（例：2021/1/10、R3.1.10）。"
HINT_DAY = "日も入力してください。"

_HYPHENS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\u2500\ufe63"  # after NFKC; all read as '-'
_WEEKDAY = re.compile(r"\s*\((?:[月火水木金土日](?:曜日?)?)?\)?\s*$")
_TOKEN = re.compile(r"(?P<num>[0-9]+)|(?P<era>明治|大正|昭和|平成|令和|[MTSHR])|(?P<gan>元)|(?P<sep>[-/.年月日])"
                    r"|(?P<ws>\s+)|(?P<bad>.)")


# --- results --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedDate:
    value: date
    note: str = ""

    ok = True
    incomplete = False

    @property
    def message(self) -> str:
        return self.note

    @property
    def iso(self) -> str:
        return self.value.isoformat()

    @property
    def display(self) -> str:
        return format_date_ja(self.value)

    @property
    def display_with_era(self) -> str:
        return format_date_ja_with_era(self.value)


@dataclass(frozen=True)
class IncompleteDate:
    message: str = ""

    ok = False
    incomplete = True


@dataclass(frozen=True)
class InvalidDate:
    message: str

    ok = False
    incomplete = False


DateResult = ParsedDate | IncompleteDate | InvalidDate


# --- formatting -----------------------------------------------------------------------------------------------

def era_of(value: date) -> Era | None:
    """The modern era (明治…令和) a date belongs to, or None before 明治."""
    for era in reversed(MODERN_ERAS):
        if value in era:
            return era
    return None


def _era_year_label(era: Era, absolute_year: int) -> str:
    relative = era.absolute_year_to_relative_year(absolute_year)
    return "元" if relative == 1 else str(relative)


def format_date_ja(value: date) -> str:
    """2021-01-10 → '2021年1月10日' (how screens and print show dates)."""
    return f"{value.year}年{value.month}月{value.day}日"


def format_date_wareki(value: date) -> str:
    """2021-01-10 → '令和3年1月10日', 2019-05-01 → '令和元年5月1日' (Western form before 明治)."""
    era = era_of(value)
    if era is None:
        return format_date_ja(value)
    return f"{era.kanji}{_era_year_label(era, value.year)}年{value.month}月{value.day}日"


def format_date_ja_with_era(value: date) -> str:
    """2021-01-10 → '2021年1月10日（令和3年）' (what the page shows for the understood date)."""
    era = era_of(value)
    if era is None:
        return format_date_ja(value)
    return f"{format_date_ja(value)}（{era.kanji}{_era_year_label(era, value.year)}年）"


# --- checks on the parts --------------------------------------------------------------------------------------

def _absolute_year(era: Era | None, year: int) -> int:
    return year if era is None else era.relative_year_to_absolute_year(year)


def _last_day(era: Era) -> date | None:
    return era.until - timedelta(days=1) if era.until else None


def _year_problem(era: Era | None, year: int) -> str | None:
    if era is None:
        return MSG_TOO_OLD if year < MIN_DATE.year else None
    if year < 1:
        return MSG_ERA_YEAR
    absolute = _absolute_year(era, year)
    last = _last_day(era)
    if last is not None and absolute > last.year:
        return f"{era.kanji}は{era.kanji}{_era_year_label(era, last.year)}年（{format_date_ja(last)}）までです。"
    if absolute < MIN_DATE.year:
        return MSG_TOO_OLD
    return None


def _month_problem(era: Era | None, year: int, month: int, *, era_range: bool = True) -> str | None:
    if problem := _year_problem(era, year):
        return problem
    if not 1 <= month <= 12:
        return MSG_MONTH
    absolute = _absolute_year(era, year)
    first = date(absolute, month, 1)
    last_of_month = date(absolute, month, calendar.monthrange(absolute, month)[1])
    if era is None or not era_range:
        return None
    last = _last_day(era)
    if last_of_month < era.since or (last is not None and first > last):
        other = era_of(first)
        where = f"{other.kanji}{_era_year_label(other, absolute)}年{month}月" if other else f"{absolute}年{month}月"
        bound = (f"{era.kanji}は{format_date_ja(era.since)}からです" if last_of_month < era.since
                 else f"{era.kanji}は{format_date_ja(last)}までです")
        return f"{bound}（{absolute}年{month}月は{where}）。"
    return None


def _date_problem(era: Era | None, year: int, month: int, day: int) -> tuple[date | None, str | None]:
    if problem := _month_problem(era, year, month, era_range=False):  # the era is checked on the day below
        return None, problem
    if not 1 <= day <= 31:
        return None, MSG_DAY
    absolute = _absolute_year(era, year)
    days = calendar.monthrange(absolute, month)[1]
    if day > days:
        label = str(year) if era is None else f"{era.kanji}{'元' if year == 1 else year}"
        return None, f"{month}月は{days}日までです（{label}年{month}月{day}日はありません）。"
    value = date(absolute, month, day)
    if value < MIN_DATE:
        return None, MSG_TOO_OLD
    if era is not None and value not in era:
        bound = (f"{era.kanji}は{format_date_ja(era.since)}からです" if value < era.since
                 else f"{era.kanji}は{format_date_ja(_last_day(era))}までです")
        return None, f"{bound}（{format_date_ja(value)}は{format_date_wareki(value)}）。"
    return value, None


def _grows_into_valid(digits: str, max_digits: int, check, *, full_only: bool = False) -> bool:
    """Whether appending digits (up to max_digits in all, or exactly that many) to a number being typed can
    satisfy check."""
    first = max_digits - len(digits) if full_only else 1
    for extra in range(first, max_digits - len(digits) + 1):
        for tail in itertools.product("0123456789", repeat=extra):
            if check(digits + "".join(tail)) is None:
                return True
    return False


# --- parsing --------------------------------------------------------------------------------------------------

def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)  # full-width digits/letters/separators, ㋿ → 令和, ㍻ → 平成
    text = "".join("-" if ch in _HYPHENS else ch for ch in text).strip().upper()
    return _WEEKDAY.sub("", text) if text else text


def _tokens(text: str) -> list[tuple[str, str]] | None:
    raw = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    if any(kind == "bad" for kind, _ in raw):
        return None
    out = []
    for i, (kind, value) in enumerate(raw):
        if kind == "ws":  # a space between two numbers separates them; elsewhere it is noise
            if 0 < i < len(raw) - 1 and raw[i - 1][0] == "num" and raw[i + 1][0] == "num":
                out.append(("sep", " "))
            continue
        out.append((kind, value))
    return out


def _finish(value: date, today: date | None) -> ParsedDate:
    if today is not None and value > today:
        return ParsedDate(value, f"本日（{format_date_ja(today)}）より後の日付です。")
    return ParsedDate(value)


def _single_run(era: Era | None, digits: str, today: date | None) -> DateResult:
    """Digits only after the optional era: a year being typed, or the compact forms 20210110 / R030110."""
    n = len(digits)
    year_digits, compact = (2, 6) if era is not None else (4, 8)
    if n <= year_digits:
        def check_year(d: str) -> str | None:
            return _year_problem(era, int(d))

        problem = check_year(digits)
        if problem is None or (n < year_digits and _grows_into_valid(digits, year_digits, check_year)):
            if era is None and n < year_digits:
                return IncompleteDate(MSG_WESTERN_YEAR)
            return IncompleteDate(problem or HINT_MONTH_DAY)
        return InvalidDate(problem)
    if n > compact:
        return InvalidDate(MSG_ERA_COMPACT if era is not None else MSG_COMPACT)
    y = year_digits

    def check_compact(d: str) -> str | None:
        return _date_problem(era, int(d[:y]), int(d[y:y + 2]), int(d[y + 2:]))[1]

    if n == compact:
        value, problem = _date_problem(era, int(digits[:y]), int(digits[y:y + 2]), int(digits[y + 2:]))
        return _finish(value, today) if value else InvalidDate(problem)
    hint = MSG_ERA_COMPACT if era is not None else MSG_COMPACT
    if _grows_into_valid(digits, compact, check_compact, full_only=True):
        return IncompleteDate(hint)
    problem = _year_problem(era, int(digits[:y]))
    if problem is None and n >= y + 2:
        problem = _month_problem(era, int(digits[:y]), int(digits[y:y + 2]))
    return InvalidDate(problem or hint)


def parse_date(text: Any, *, today: date | None = None) -> DateResult:
    """Understand a typed date. Never raises. ``today`` (if given) adds a note to dates after it."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_LENGTH:
        return InvalidDate(MSG_UNREADABLE)
    s = _normalise(text)
    if not s:
        return IncompleteDate("")
    if any(len(s) < len(name) and name.startswith(s) for name in _ERA_BY_KANJI):
        return IncompleteDate(HINT_START)
    tokens = _tokens(s)
    if not tokens:
        return InvalidDate(MSG_UNREADABLE)

    era = None
    if tokens[0][0] == "era":
        name = tokens.pop(0)[1]
        era = _ERA_BY_KANJI.get(name) or _ERA_BY_LETTER[name]
        if not tokens:
            return IncompleteDate(HINT_START)

    numbers: list[str] = []
    separators: list[str] = []
    for kind, value in tokens:
        expecting_number = len(numbers) == len(separators)
        if expecting_number and (kind == "num" or (kind == "gan" and era is not None and not numbers)):
            numbers.append(value)
        elif not expecting_number and kind == "sep":
            separators.append(value)
        else:
            return InvalidDate(MSG_UNREADABLE)
    if len(numbers) > 3:
        return InvalidDate(MSG_UNREADABLE)
    for position, sep in enumerate(separators):
        allowed = {0: "年-/. ", 1: "月-/. ", 2: "日"}[position]
        if sep not in allowed:
            return InvalidDate(MSG_UNREADABLE)
    still_typing = len(separators) < len(numbers)  # the last number may still grow

    if len(numbers) == 1 and still_typing and numbers[0] != "元":
        return _single_run(era, numbers[0], today)

    year_text = numbers[0]
    if era is None and len(year_text) != 4:
        return InvalidDate(MSG_WESTERN_YEAR)
    if era is not None and len(year_text) > 2:
        return InvalidDate(MSG_ERA_YEAR)
    year = 1 if year_text == "元" else int(year_text)
    if problem := _year_problem(era, year):
        return InvalidDate(problem)
    if len(numbers) == 1:
        return IncompleteDate(HINT_MONTH_DAY)

    month_text = numbers[1]
    if len(month_text) > 2:
        return InvalidDate(MSG_MONTH)
    if len(numbers) == 2:
        def check_month(d: str) -> str | None:
            return _month_problem(era, year, int(d))

        problem = check_month(month_text)
        if problem is None:
            return IncompleteDate(HINT_DAY)
        if still_typing and _grows_into_valid(month_text, 2, check_month):
            return IncompleteDate(problem)
        return InvalidDate(problem)

    month = int(month_text)
    if problem := _month_problem(era, year, month, era_range=False):
        return InvalidDate(problem)
    day_text = numbers[2]
    if len(day_text) > 2:
        return InvalidDate(MSG_DAY)

    def check_day(d: str) -> str | None:
        return _date_problem(era, year, month, int(d))[1]

    value, problem = _date_problem(era, year, month, int(day_text))
    if value is not None:
        return _finish(value, today)
    if still_typing and _grows_into_valid(day_text, 2, check_day):
        return IncompleteDate(problem)
    return InvalidDate(problem)


# --- what callers use -----------------------------------------------------------------------------------------

def normalise_date(text: Any, *, today: date | None = None) -> tuple[str | None, str | None]:
    """For the server: (ISO date, None), (None, None) for empty input, or (None, Japanese message)."""
    result = parse_date(text, today=today)
    if isinstance(result, ParsedDate):
        return result.iso, None
    if isinstance(result, IncompleteDate):
        return None, result.message or None  # only empty input has no message
    return None, result.message


def date_feedback(text: Any, *, today: date | None = None) -> dict[str, Any]:
    """The JSON the page gets while typing: ok, iso, display ('2021年1月10日（令和3年）'), message, incomplete."""
    result = parse_date(text, today=today)
    if isinstance(result, ParsedDate):
        return {"ok": True, "iso": result.iso, "display": result.display_with_era, "message": result.message,
                "incomplete": False}
    return {"ok": False, "iso": None, "display": "", "message": result.message, "incomplete": result.incomplete}
