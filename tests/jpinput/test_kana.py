"""フリガナ conversion and the characters HER-SYS can take."""
from __future__ import annotations

import jaconv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formengine.valuetypes import check_value
from jpinput import check_hersys_text, check_kana, kana_feedback, to_fullwidth_katakana

# Full-width katakana that have a hiragana form; the half-width form is used where one exists.
KATAKANA = [chr(c) for c in range(0x30A1, 0x30F7)] + ["ー"]


@st.composite
def kana_names(draw):
    """(expected, typed): a katakana name of 1–3 parts, typed with each character as katakana, hiragana or
    half-width kana and the parts separated by any mix of ASCII and full-width spaces."""
    parts = draw(st.lists(st.text(alphabet=KATAKANA, min_size=1, max_size=8), min_size=1, max_size=3))
    typed_parts = []
    for part in parts:
        chars = []
        for ch in part:
            how = draw(st.sampled_from(["katakana", "hiragana", "halfwidth"]))
            if how == "hiragana":
                ch = jaconv.kata2hira(ch)
            elif how == "halfwidth":
                ch = jaconv.z2h(ch, kana=True, ascii=False, digit=False)
            chars.append(ch)
        typed_parts.append("".join(chars))
    seps = [draw(st.sampled_from([" ", "　", "  ", " 　", "\t"])) for _ in typed_parts[1:]]
    typed = typed_parts[0] + "".join(s + p for s, p in zip(seps, typed_parts[1:], strict=True))
    around = draw(st.sampled_from(["", " ", "　"]))
    return "　".join(parts), around + typed + around


@settings(max_examples=500, deadline=None)
@given(kana_names())
def test_any_hiragana_halfwidth_or_mixed_spelling_becomes_the_katakana(case):
    expected, typed = case
    assert to_fullwidth_katakana(typed) == expected
    assert check_kana(expected) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=KATAKANA, min_size=1, max_size=8), min_size=1, max_size=3))
def test_a_converted_name_passes_the_form_check(parts):
    """What the page converts, the server's kana item accepts (jpinput and formengine agree on the set)."""
    value = to_fullwidth_katakana(" ".join(jaconv.kata2hira(p) for p in parts))
    assert check_value({"id": "k", "label": "フリガナ", "type": "kana"}, value)[1] is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_conversion_is_idempotent_and_never_raises(text):
    once = to_fullwidth_katakana(text)
    assert to_fullwidth_katakana(once) == once
    assert "  " not in once and not once.startswith("　") and not once.endswith("　")


@pytest.mark.parametrize("typed, expected", [
    ("やまだ　たろう", "ヤマダ　タロウ"),
    ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ"),
    ("ヤマダ  たろう", "ヤマダ　タロウ"),
    ("ｶﾞｯｺｳ", "ガッコウ"),
    ("ｳﾞｧｲｵﾘﾝ", "ヴァイオリン"),
    ("ゔぁいおりん", "ヴァイオリン"),
    ("ﾊﾟｰﾃｨｰ", "パーティー"),
    ("カ\u3099ッコウ", "ガッコウ"),  # decomposed (macOS, some EMR exports)
    ("か゛っこう", "ガッコウ"),  # spacing voiced mark
    ("ろ-ま", "ローマ"),
    ("ロ－マ", "ローマ"),
    ("ロ―マ", "ローマ"),
    ("スミス・ｼﾞｮﾝ", "スミス・ジョン"),
    ("\tさとう\u3000\u3000 はなこ ", "サトウ　ハナコ"),
    ("みすゞ", "ミスヾ"),
    ("", ""),
])
def test_examples(typed, expected):
    assert to_fullwidth_katakana(typed) == expected


def test_check_kana_names_what_is_not_kana():
    assert check_kana("ヤマダ　タロウ") is None
    assert check_kana("") is None
    assert check_kana("ヤマダ　Taro") == "フリガナはカタカナで入力してください（カタカナ以外の文字：「T」「a」「r」「o」）。"
    assert check_kana("山田") == "フリガナはカタカナで入力してください（カタカナ以外の文字：「山」「田」）。"
    assert check_kana("ヤマダ\u200bタロウ") == "フリガナはカタカナで入力してください（カタカナ以外の文字：U+200B）。"
    assert check_kana("abcdefg").endswith("「a」「b」「c」「d」「e」ほか）。")
    assert check_kana(None) is not None


@pytest.mark.parametrize("text", ["山田　太郎", "髙橋", "山﨑", "①②", "㈱", "東京都千代田区１−２−３", "ｶﾀｶﾅ", "37.5℃",
                                  "〜", "咳、発熱\n倦怠感", "★"])
def test_text_hersys_takes(text):
    assert check_hersys_text(text, 200) == []


def test_emoji_are_refused():
    assert check_hersys_text("山田😀", None) == ["絵文字は入力できません（😀）。"]
    assert check_hersys_text("👨‍👩‍👧", None) == ["絵文字は入力できません（👨👩👧）。"]
    assert check_hersys_text("発熱🤒️あり", None) == ["絵文字は入力できません（🤒）。"]


def test_characters_outside_windows_31j_are_refused():
    assert check_hersys_text("𠮷野", None) == [
        "HER-SYSに登録できない文字が含まれています：「𠮷」。JIS第1・第2水準などの一般的な字に置き換えてください（例：「𠮷」→「吉」）。"]
    assert check_hersys_text("葛\U000e0100城", None)[0].startswith("HER-SYSに登録できない文字が含まれています：U+E0100。")
    assert check_hersys_text("\ue000", None)[0].startswith("HER-SYSに登録できない文字が含まれています：U+E000。")
    assert check_hersys_text("ヷ", None)[0].startswith("HER-SYSに登録できない文字が含まれています：「ヷ」。")
    assert check_hersys_text("¥100", None)[0].startswith("HER-SYSに登録できない文字が含まれています：「¥」。")
    assert check_hersys_text("￥100", None) == []


def test_control_characters_are_refused_but_line_breaks_are_not():
    assert check_hersys_text("a\x07b", None) == ["入力できない制御文字が含まれています：U+0007。"]
    assert check_hersys_text("a\x85b", None) == ["入力できない制御文字が含まれています：U+0085。"]
    assert check_hersys_text("a\r\nb\tc", None) == []


def test_too_long_text_says_so():
    assert check_hersys_text("あ" * 2000, 2000) == []
    assert check_hersys_text("あ" * 2001, 2000) == ["2000文字以内で入力してください（現在2001文字）。"]
    assert check_hersys_text("😀" * 3, 2) == ["絵文字は入力できません（😀）。", "2文字以内で入力してください（現在3文字）。"]
    assert check_hersys_text(None, 10) == ["文字で入力してください。"]


def test_kana_feedback():
    assert kana_feedback("やまだ　たろう") == {"value": "ヤマダ　タロウ", "message": ""}
    assert kana_feedback("") == {"value": "", "message": ""}
    assert kana_feedback("やまだ😀")["message"] == "フリガナはカタカナで入力してください（カタカナ以外の文字：「😀」）。"
    assert kana_feedback("ヷ")["message"].startswith("HER-SYSに登録できない文字")
    assert kana_feedback("あいう", max_length=2)["message"] == "2文字以内で入力してください（現在3文字）。"


def _reference(text, max_length=None):
    """check_hersys_text as it was: every character through hersys_accepts."""
    import jpinput.kana as kana

    original = kana._all_accepted
    kana._all_accepted = lambda text: False
    try:
        return kana.check_hersys_text(text, max_length)
    finally:
        kana._all_accepted = original


def test_the_whole_string_check_finds_what_the_character_check_finds():
    """The fast path for a whole string (issue 13) gives exactly the messages of the character-by-character check,
    for strings mixing every kind of character HER-SYS takes or refuses."""
    import random

    from jpinput.kana import check_hersys_text

    pool = ["あ", "ア", "ｱ", "漢", "髙", "𠮷", "①", "Ⅰ", "㈱", "a", " ", "　", "\u00a0", "\n", "\r", "\t", "\x00",
            "\x7f", "\u200b", "\u200d", "\ufe0f", "😀", "\ue000", "\ue757", "\uf8f0", "é", "ß", "—", "―", "〜", "～",
            "−", "－", "¥", "\\", "\u3000", "\u2028", "\ud7a3"]
    rng = random.Random(13)
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
        assert check_hersys_text(text, 8) == _reference(text, 8), repr(text)
    assert check_hersys_text("高橋　太郎") == [] and check_hersys_text("😀")
