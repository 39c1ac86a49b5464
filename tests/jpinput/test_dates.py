"""Dates as staff type them: every accepted form round-trips, typing never errors early, impossible dates and
era dates outside their era are refused in Japanese."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpinput import (
    IncompleteDate,
    InvalidDate,
    ParsedDate,
    date_feedback,
    format_date_ja,
    format_date_ja_with_era,
    format_date_wareki,
    normalise_date,
    parse_date,
)

# The test's own era table (the official first days), independent of the library the product uses.
ERAS = [("明治", "M", date(1868, 1, 25)), ("大正", "T", date(1912, 7, 30)), ("昭和", "S", date(1926, 12, 25)),
        ("平成", "H", date(1989, 1, 8)), ("令和", "R", date(2019, 5, 1))]
LOW, HIGH = date(1873, 1, 1), date(2099, 12, 31)


def era_of(d: date):
    return [e for e in ERAS if e[2] <= d][-1]


def era_year(d: date, era=None) -> int:
    return d.year - (era or era_of(d))[2].year + 1


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def pad(n: int, padded: bool) -> str:
    return f"{n:02d}" if padded else str(n)


@st.composite
def written_dates(draw, low=LOW, high=HIGH):
    """(date, text): a date written in one of the accepted forms, maybe full-width, maybe with spaces around."""
    d = draw(st.dates(min_value=low, max_value=high))
    padded = draw(st.booleans())
    m, dd = pad(d.month, padded), pad(d.day, padded)
    kanji, letter, _ = era_of(d)
    ey = era_year(d)
    ey_text = draw(st.sampled_from(["元", pad(1, padded)])) if ey == 1 else pad(ey, padded)
    form = draw(st.sampled_from(["iso", "slash", "dot", "compact", "western_kanji", "era_abbrev", "era_compact",
                                 "era_kanji"]))
    if form == "iso":
        text = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    elif form == "slash":
        text = f"{d.year}/{m}/{dd}"
    elif form == "dot":
        text = f"{d.year}.{m}.{dd}"
    elif form == "compact":
        text = f"{d.year:04d}{d.month:02d}{d.day:02d}"
    elif form == "western_kanji":
        text = f"{d.year}年{m}月{dd}日"
    elif form == "era_abbrev":
        sep = draw(st.sampled_from("./-"))
        head = draw(st.sampled_from([letter, letter.lower()]))
        text = f"{head}{ey_text}{sep}{m}{sep}{dd}"
    elif form == "era_compact":
        text = f"{letter}{ey:02d}{d.month:02d}{d.day:02d}"
    else:
        text = f"{kanji}{ey_text}年{m}月{dd}日"
    if draw(st.booleans()):
        text = fullwidth(text)
    before, after = draw(st.sampled_from(["", " ", "　", "\t"])), draw(st.sampled_from(["", " ", "　 "]))
    return d, before + text + after


@settings(max_examples=800, deadline=None)
@given(written_dates())
def test_every_accepted_form_parses_back_to_its_date(case):
    d, text = case
    result = parse_date(text)
    assert isinstance(result, ParsedDate), (text, result)
    assert result.value == d
    assert result.iso == d.isoformat()


@settings(max_examples=300, deadline=None)
@given(written_dates())
def test_typing_never_shows_an_error_before_the_date_is_complete(case):
    """Each prefix of an accepted input is still being typed (incomplete) or already a date, never an error."""
    _, text = case
    for end in range(len(text) + 1):
        result = parse_date(text[:end])
        assert not isinstance(result, InvalidDate), (text[:end], result)


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=LOW, max_value=HIGH), st.sampled_from(ERAS), st.booleans())
def test_an_era_date_outside_its_era_is_refused(d, era, padded):
    kanji, letter, since = era
    following = ERAS[ERAS.index(era) + 1][2] if era != ERAS[-1] else date.max
    relative = era_year(d, era)
    if since <= d < following or not 1 <= relative <= 99:
        return
    for text in (f"{letter}{relative}.{d.month}.{d.day:02d}", f"{kanji}{relative}年{pad(d.month, padded)}月{d.day}日"):
        result = parse_date(text)
        assert isinstance(result, InvalidDate), (text, result)
        assert kanji in result.message


@pytest.mark.parametrize("text, expected", [
    ("2021-01-10", date(2021, 1, 10)), ("2021/1/10", date(2021, 1, 10)), ("2021.1.10", date(2021, 1, 10)),
    ("20210110", date(2021, 1, 10)), ("R3.1.10", date(2021, 1, 10)), ("R3/1/10", date(2021, 1, 10)),
    ("r3-1-10", date(2021, 1, 10)), ("R030110", date(2021, 1, 10)), ("令和3年1月10日", date(2021, 1, 10)),
    ("令和元年5月1日", date(2019, 5, 1)), ("H31.4.30", date(2019, 4, 30)), ("平成31年4月30日", date(2019, 4, 30)),
    ("S64.1.7", date(1989, 1, 7)), ("H1.1.8", date(1989, 1, 8)), ("T1.7.30", date(1912, 7, 30)),
    ("M45.7.29", date(1912, 7, 29)), ("２０２１／０１／１０", date(2021, 1, 10)), ("Ｒ３．１．１０", date(2021, 1, 10)),
    ("  2021/1/10　", date(2021, 1, 10)), ("令和 3 年 1 月 10 日", date(2021, 1, 10)), ("2021 1 10", date(2021, 1, 10)),
    ("2021ー01ー10", date(2021, 1, 10)), ("2021−1−10", date(2021, 1, 10)), ("㋿3.1.10", date(2021, 1, 10)),
    ("㍻31.4.30", date(2019, 4, 30)), ("2021/1/10(日)", date(2021, 1, 10)), ("2021年1月10日（日曜日）", date(2021, 1, 10)),
    ("2020/2/29", date(2020, 2, 29)), ("1873-01-01", date(1873, 1, 1)),
])
def test_accepted_examples(text, expected):
    result = parse_date(text)
    assert isinstance(result, ParsedDate), result
    assert result.value == expected


@pytest.mark.parametrize("text, message", [
    ("H31.5.1", "平成は2019年4月30日までです（2019年5月1日は令和元年5月1日）。"),
    ("R1.4.30", "令和は2019年5月1日からです（2019年4月30日は平成31年4月30日）。"),
    ("S64.1.8", "昭和は1989年1月7日までです（1989年1月8日は平成元年1月8日）。"),
    ("平成31年5月1日", "平成は2019年4月30日までです（2019年5月1日は令和元年5月1日）。"),
    ("H31.5", "平成は2019年4月30日までです（2019年5月は令和元年5月）。"),
    ("H40.1.1", "平成は平成31年（2019年4月30日）までです。"),
    ("2021/2/29", "2月は28日までです（2021年2月29日はありません）。"),
    ("R3.2.29", "2月は28日までです（令和3年2月29日はありません）。"),
    ("2021/4/31", "4月は30日までです（2021年4月31日はありません）。"),
    ("2021/13/1", "月は1〜12で入力してください。"),
    ("2021/1/32", "日は1〜31で入力してください。"),
    ("2021/1/0日", "日は1〜31で入力してください。"),
    ("1850/1/1", "1873年（明治6年）1月1日より前の日付は入力できません。"),
    ("M5.12.31", "1873年（明治6年）1月1日より前の日付は入力できません。"),
    ("21/1/10", "年は西暦4桁で入力するか、元号を付けてください（例：2021/1/10、R3.1.10）。"),
    ("R0.1.1", "元号の年は1（元年）から2桁までで入力してください（例：R3.1.10、令和元年5月1日）。"),
    ("20211310", "月は1〜12で入力してください。"),
    ("202101100", "数字だけの場合は年4桁・月2桁・日2桁の8桁で入力してください（例：20210110）。"),
    ("2021-01-10T09:00", "日付として読み取れません（例：2021/1/10、20210110、R3.1.10、令和3年1月10日）。"),
    ("2021/1/10/", "日付として読み取れません（例：2021/1/10、20210110、R3.1.10、令和3年1月10日）。"),
    ("きのう", "日付として読み取れません（例：2021/1/10、20210110、R3.1.10、令和3年1月10日）。"),
    ("X" * 65, "日付として読み取れません（例：2021/1/10、20210110、R3.1.10、令和3年1月10日）。"),
])
def test_refused_with_a_japanese_message(text, message):
    result = parse_date(text)
    assert isinstance(result, InvalidDate), result
    assert result.message == message


@pytest.mark.parametrize("text, message", [
    ("", ""), ("   ", ""), ("R", "年・月・日を入力してください（例：R3.1.10）。"), ("令", "年・月・日を入力してください（例：R3.1.10）。"),
    ("R3", "月と日も入力してください（例：2021/1/10、R3.1.10）。"), ("R3.1", "日も入力してください。"),
    ("R3.1.", "日も入力してください。"), ("2021", "月と日も入力してください（例：2021/1/10、R3.1.10）。"),
    ("2021/", "月と日も入力してください（例：2021/1/10、R3.1.10）。"), ("令和3年1月", "日も入力してください。"),
    ("202", "年は西暦4桁で入力するか、元号を付けてください（例：2021/1/10、R3.1.10）。"),
    ("2021011", "数字だけの場合は年4桁・月2桁・日2桁の8桁で入力してください（例：20210110）。"),
    ("2021/0", "月は1〜12で入力してください。"),
    ("H1.1.1", "平成は1989年1月8日からです（1989年1月1日は昭和64年1月1日）。"),  # on the way to H1.1.10–19
])
def test_partial_input_is_incomplete_not_an_error(text, message):
    result = parse_date(text)
    assert isinstance(result, IncompleteDate), result
    assert result.message == message


def test_future_dates_get_a_note_not_an_error():
    today = date(2021, 1, 10)
    assert parse_date("R3.1.10", today=today).message == ""
    result = parse_date("R3.1.11", today=today)
    assert isinstance(result, ParsedDate) and result.message == "本日（2021年1月10日）より後の日付です。"


def test_non_text_is_refused():
    assert isinstance(parse_date(None), InvalidDate)
    assert isinstance(parse_date(20210110), InvalidDate)


def test_formatting():
    assert format_date_ja(date(2021, 1, 10)) == "2021年1月10日"
    assert format_date_ja_with_era(date(2021, 1, 10)) == "2021年1月10日（令和3年）"
    assert format_date_ja_with_era(date(2019, 5, 1)) == "2019年5月1日（令和元年）"
    assert format_date_ja_with_era(date(2019, 4, 30)) == "2019年4月30日（平成31年）"
    assert format_date_ja_with_era(date(1989, 1, 7)) == "1989年1月7日（昭和64年）"
    assert format_date_ja_with_era(date(1989, 1, 8)) == "1989年1月8日（平成元年）"
    assert format_date_wareki(date(2021, 1, 10)) == "令和3年1月10日"
    assert format_date_wareki(date(1926, 12, 25)) == "昭和元年12月25日"
    assert format_date_ja_with_era(date(1800, 1, 1)) == "1800年1月1日"  # before 明治: no era label


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=LOW, max_value=HIGH))
def test_formatted_dates_parse_back(d):
    """What the page shows can be typed back: 2021年1月10日 and 令和3年1月10日."""
    assert parse_date(format_date_ja(d)) == ParsedDate(d)
    assert parse_date(format_date_wareki(d)) == ParsedDate(d)
    kanji, _, _ = era_of(d)
    ey = era_year(d)
    assert format_date_ja_with_era(d) == f"{format_date_ja(d)}（{kanji}{'元' if ey == 1 else ey}年）"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_never_raises_on_any_text(text):
    result = parse_date(text)
    assert result.ok in (True, False)
    assert isinstance(result.message, str)


def test_feedback_and_normalise():
    assert date_feedback("R3.1.10") == {"ok": True, "iso": "2021-01-10", "display": "2021年1月10日（令和3年）",
                                        "message": "", "incomplete": False}
    assert date_feedback("R3.1") == {"ok": False, "iso": None, "display": "", "message": "日も入力してください。",
                                     "incomplete": True}
    assert date_feedback("H31.5.1")["incomplete"] is False
    assert normalise_date("令和3年1月10日") == ("2021-01-10", None)
    assert normalise_date("  ") == (None, None)
    assert normalise_date("R3.1") == (None, "日も入力してください。")
    assert normalise_date("2021/2/30") == (None, "2月は28日までです（2021年2月30日はありません）。")
