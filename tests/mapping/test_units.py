"""Unit tests of the normalisers, code tables and the HL7 decoder."""

from __future__ import annotations

import pytest

from mapping.codes import load_local_codes, parse_result, risk_factor
from mapping.hl7v2 import decode_bytes, decode_iso2022jp_lenient, parse_text
from mapping.normalize import address, kana_name, parse_date, person_name, phone, postal_code


@pytest.mark.parametrize(("raw", "iso"), [
    ("19300717", "1930-07-17"), ("20210302041200", "2021-03-02"), ("20210302041200.1234+0900", "2021-03-02"),
    ("2021-02-12T04:12:00+09:00", "2021-02-12"), ("2021-02-11T19:12:00Z", "2021-02-12"),  # JST date
    ("2021/5/1", "2021-05-01"), ("２０２１－０５－０１", "2021-05-01"), ("2021年5月1日", "2021-05-01"),
    ("平成25年2月3日", "2013-02-03"), ("S05.07.17", "1930-07-17"), ("令和元年5月1日", "2019-05-01"),
])
def test_dates(raw: str, iso: str) -> None:
    assert parse_date(raw) == (iso, None)


@pytest.mark.parametrize("raw", ["202102", "20210230", "2021-13-01", "yesterday", "19000101x", "99999999"])
def test_dates_never_guessed(raw: str) -> None:
    value, warning = parse_date(raw)
    assert value is None and warning


def test_names_and_kana() -> None:
    assert person_name("渡辺", "恵") == ("渡辺　恵", None)
    assert person_name("渡辺 恵") == ("渡辺　恵", None)
    assert person_name("渡辺　恵") == ("渡辺　恵", None)
    assert person_name("髙橋", "﨑子")[0] == "髙橋　﨑子"  # vendor kanji kept as written (no NFKC)
    assert kana_name("ﾜﾀﾅﾍﾞ", "ﾒｸﾞﾐ") == ("ワタナベ　メグミ", None)
    assert kana_name("わたなべ めぐみ") == ("ワタナベ　メグミ", None)
    assert kana_name("ｺｰﾄﾞ")[0] == "コード"
    value, warning = kana_name("渡辺", "メグミ")
    assert value is None and warning  # kanji in a kana field is not kana


def test_contact_data() -> None:
    assert postal_code("105-0011") == ("1050011", None)
    assert postal_code("〒１０５－００１１") == ("1050011", None)
    assert postal_code("10500")[0] is None
    assert phone("０９０－４９１２－７６１７") == ("090-4912-7617", None)
    assert phone("09049127617") == ("09049127617", None)  # no hyphens invented
    assert phone("(03)1234-5678") == ("03-1234-5678", None)
    assert phone("123")[0] is None
    assert address("東京都港区芝公園1-5-2")[0] == "東京都港区芝公園１－５－２"
    assert address("〒105-0011 東京都港区芝公園１−５−２")[0] == "東京都港区芝公園１−５−２"


@pytest.mark.parametrize(("raw", "code"), [
    ("陽性", "positive"), ("（＋）", "positive"), ("(+)", "positive"), ("+", "positive"), ("POS", "positive"),
    ("positive", "positive"), ("陽性(+)", "positive"), ("検出", "positive"), ("陰性", "negative"),
    ("（－）", "negative"), ("(-)", "negative"), ("（−）", "negative"), ("NEG", "negative"), ("検出せず", "negative"),
    ("不検出", "negative"), ("260385009", "negative"), ("判定中", "pending"),
    ("陽性？", None), ("±", None), ("判定保留", None), ("陽性/陰性", None), ("", None), ("2.41", None),
])
def test_results(raw: str, code: str | None) -> None:
    assert parse_result(raw) == code


@pytest.mark.parametrize(("icd", "factor"), [
    ("J449", "copd"), ("J44.9", "copd"), ("N184", "ckd"), ("E119", "diabetes_t2"), ("E10", None), ("I10", "hypertension"),
    ("I15.0", "hypertension"), ("I20", None), ("E785", "dyslipidemia"), ("E669", "obesity"), ("C349", "malignancy"),
    ("C97", "malignancy"), ("D00", None), ("F17.2", "smoking"), ("Z72.0", "smoking"), ("Z72.1", None),
    ("O24.4", "pregnancy"), ("O85", None), ("Z33", "pregnancy"), ("Z94.0", "transplant_immunosuppression"),
    ("Z94.7", None), ("K210", None), ("U071", None), ("not-a-code", None),
])
def test_icd10_risk_table(icd: str, factor: str | None) -> None:
    assert risk_factor(icd) == factor


def test_local_codes_loader_is_lenient() -> None:
    codes = load_local_codes({"lab": {"A": {"name": "x", "method": "nonsense"}, "B": {"name": "y", "method": "pcr"}}})
    assert codes.method("B") == "pcr" and codes.method("A") is None and codes.errors
    assert load_local_codes("/nonexistent.json").errors


def test_decoding_iso2022jp_cp932_vendor_and_utf8() -> None:
    text = "PID|渡辺^恵"
    assert decode_bytes(text.encode("iso2022_jp"))[0] == text
    assert decode_bytes("髙橋①".encode("cp932"))[0] == "髙橋①"
    assert decode_bytes(text.encode("utf-8"))[0] == text
    # ISO-2022-JP carrying NEC row-13 characters (cp50220 style): not valid JIS X 0208, still readable
    assert decode_iso2022jp_lenient(b"\x1b$B\x2d\x21\x1b(B") == ("①", True)
    assert decode_bytes(b"\x1b$B\x2d\x21\x1b(B")[0] == "①"


def test_segment_separators_and_escapes() -> None:
    for sep in ("\r", "\n", "\r\n"):
        msgs = parse_text(sep.join(["MSH|^~\\&|A", "PID|1||9^^^^PI||A\\S\\B^C", "ZZ1|x"]) + sep)
        pid = msgs[0].first("PID")
        assert pid is not None and pid.get(5, 1) == "A^B" and pid.get(5, 2) == "C"
        assert [s.name for s in msgs[0].segments] == ["MSH", "PID", "ZZ1"]
    # custom delimiters from MSH-1/MSH-2
    pid = parse_text("MSH#*@\\%#A\rPID#1##9**** PI##山田*太郎")[0].first("PID")
    assert pid is not None and pid.get(5, 2) == "太郎"


def test_kana_only_repetitions_never_become_the_kanji_name() -> None:
    from mapping import extract_ssmix2_files

    msg = ("MSH|^~\\&|HIS|H|S|H|20210101||ADT^A08^ADT_A01|1|P|2.5\r"
           "PID|0001||1^^^^PI||もり^はなこ~モリ^ハナコ||19800101|F\r").encode("cp932")
    items = extract_ssmix2_files({"-/ADT-00/1_-_ADT-00_-_20210101000000000_01_1": msg})["items"]
    assert items.get("patient.name_kana") == "モリ　ハナコ"
    assert "patient.name" not in items  # no kanji (official) name in the extract: left for the user


def test_euc_jp_is_not_read_as_cp932_katakana() -> None:
    """EUC-JP bytes are valid cp932 too (half-width katakana and stray kanji): a wrong name, not an unreadable one.
    Genuine cp932 half-width katakana (0xA1-0xDF only) stays cp932."""
    msg = "PID|1||1||渡辺^恵^^^^^L^I~ワタナベ^メグミ^^^^^L^P\r"
    text, enc, _w = decode_bytes(msg.encode("euc_jp"))
    assert enc == "euc_jp" and "渡辺^恵" in text and "ワタナベ" in text
    sjis_kana = "PID|1||1||ﾜﾀﾅﾍ^ﾒｸﾞﾐ\r".encode("cp932")
    text, enc, _w = decode_bytes(sjis_kana)
    assert enc == "cp932" and "ﾜﾀﾅﾍ" in text
    assert decode_bytes("渡辺^恵\r".encode("cp932"))[1] == "cp932"
