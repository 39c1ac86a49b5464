"""Kana names and the characters HER-SYS can take.

``to_fullwidth_katakana`` turns what staff type into フリガナ (hiragana, half-width kana with their voiced marks,
decomposed kana from another system, mixed widths) into full-width katakana with one full-width space between
names; ``check_kana`` says which characters are still not kana; ``check_hersys_text`` says which characters
HER-SYS cannot take and whether the text is too long.

Allowed characters (docs/adr/0013-japanese-input.md):

- フリガナ: katakana ァ–ヺ, the long vowel mark ー, ・ and the iteration marks ヽヾ, the full-width space — the
  same set ``formengine`` accepts for a ``kana`` item, so a converted value always passes the form's own check;
- any text sent to HER-SYS: what Windows-31J (cp932) can encode — JIS X 0208 plus the NEC and IBM extensions
  found in real names (髙, 﨑) and in clinical text (①, ㈱) — except control characters other than tab and line
  breaks, and the user-defined area (外字, U+E000–U+F8FF), which cp932 maps but which means nothing elsewhere.
  Emoji, characters outside the BMP (𠮷) and kanji variation selectors are refused with a message.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

import jaconv

FW_SPACE = "\u3000"
#: Dash-like characters typed for the long vowel mark in a kana name (ｰ becomes ー through jaconv).
LONG_VOWEL_LOOKALIKES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2500\ufe63\uff0d"
KANA_ALLOWED = re.compile(r"[\u30a1-\u30fa\u30fb\u30fc\u30fd\u30fe\u3000]")
MAX_SHOWN = 5

_SPACES = re.compile(r"[\s\u3000]+")
_LINE_CONTROLS = "\t\n\r"


def to_fullwidth_katakana(text: Any) -> str:
    """'やまだ　たろう', 'ﾔﾏﾀﾞ ﾀﾛｳ', 'ヤマダ  たろう' → 'ヤマダ　タロウ'. Characters that are not kana stay as they
    are (``check_kana`` reports them); never raises."""
    if not isinstance(text, str):
        return ""
    text = jaconv.h2z(text, kana=True, ascii=False, digit=False)  # ｶﾞ → ガ, ｰ → ー, ･ → ・
    text = text.replace("\u309b", "\u3099").replace("\u309c", "\u309a")  # spacing ゛゜ after a kana combine
    text = unicodedata.normalize("NFC", text)  # カ + U+3099 (macOS, some EMRs) → ガ
    text = jaconv.hira2kata(text)
    text = "".join("ー" if ch in LONG_VOWEL_LOOKALIKES else ch for ch in text)
    return _SPACES.sub(FW_SPACE, text).strip(FW_SPACE)


def _shown(ch: str) -> str:
    if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn", "Mn", "Zs", "Zl", "Zp") or ch.isspace():
        return f"U+{ord(ch):04X}"
    return f"「{ch}」"


def _listing(chars: list[str]) -> str:
    distinct = list(dict.fromkeys(chars))
    shown = "".join(_shown(ch) for ch in distinct[:MAX_SHOWN])
    return shown + ("ほか" if len(distinct) > MAX_SHOWN else "")


def check_kana(text: Any) -> str | None:
    """A Japanese message when characters other than katakana, ー, ・ and the full-width space remain."""
    if not isinstance(text, str):
        return "フリガナは文字で入力してください。"
    bad = [ch for ch in text if not KANA_ALLOWED.fullmatch(ch)]
    if not bad:
        return None
    return f"フリガナはカタカナで入力してください（カタカナ以外の文字：{_listing(bad)}）。"


def _is_emoji(ch: str) -> bool:
    o = ord(ch)
    return (0x1F000 <= o <= 0x1FAFF or 0x2600 <= o <= 0x27BF or 0x2B00 <= o <= 0x2BFF or 0xE0020 <= o <= 0xE007F
            or o in (0x200D, 0x20E3, 0xFE0F, 0x3030, 0x303D))


def hersys_accepts(ch: str) -> bool:
    """Whether HER-SYS can take this character (see the module docstring)."""
    if ch in _LINE_CONTROLS:
        return True
    if unicodedata.category(ch) in ("Cc", "Co"):
        return False
    try:
        ch.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


_WITHOUT_LINE_CONTROLS = dict.fromkeys(map(ord, _LINE_CONTROLS))


def _all_accepted(text: str) -> bool:
    """Every character of `text` is one `hersys_accepts` takes, decided for the whole string at once (issue 13:
    the character-by-character check ran for every text value of every evaluation). A printable character is
    never Cc or Co (str.isprintable), so it is accepted exactly when Windows-31J can encode it; line breaks and
    tabs are accepted as they are (and encode); anything else (controls, private use) goes through
    `hersys_accepts` one character at a time."""
    if not text.isprintable() and not text.translate(_WITHOUT_LINE_CONTROLS).isprintable():
        return False
    try:
        text.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def check_hersys_text(text: Any, max_length: int | None = None) -> list[str]:
    """Japanese messages for characters HER-SYS cannot take (emoji, characters outside Windows-31J, control
    characters) and for text longer than ``max_length`` characters; [] when the text can be sent."""
    if not isinstance(text, str):
        return ["文字で入力してください。"]
    bad = [] if _all_accepted(text) else [ch for ch in text if not hersys_accepts(ch)]
    emoji = [ch for ch in bad if _is_emoji(ch)]
    controls = [ch for ch in bad if not _is_emoji(ch) and unicodedata.category(ch) == "Cc"]
    others = [ch for ch in bad if not _is_emoji(ch) and unicodedata.category(ch) != "Cc"]
    messages = []
    if emoji:
        shown = "".join(dict.fromkeys(ch for ch in emoji if ord(ch) not in (0x200D, 0xFE0F, 0x20E3)))
        messages.append(f"絵文字は入力できません（{shown or _listing(emoji)}）。")
    if others:
        messages.append(f"HER-SYSに登録できない文字が含まれています：{_listing(others)}。"
                        "JIS第1・第2水準などの一般的な字に置き換えてください（例：「𠮷」→「吉」）。")
    if controls:
        messages.append(f"入力できない制御文字が含まれています：{_listing(controls)}。")
    if max_length is not None and len(text) > max_length:
        messages.append(f"{max_length}文字以内で入力してください（現在{len(text)}文字）。")
    return messages


def kana_feedback(text: Any, *, max_length: int | None = None) -> dict[str, Any]:
    """The JSON the page gets while typing フリガナ: the converted value and one message ('' when fine)."""
    value = to_fullwidth_katakana(text)
    problems = [check_kana(value)] if value else []
    problems += check_hersys_text(value, max_length)
    problems = [p for p in problems if p]
    return {"value": value, "message": problems[0] if problems else ""}
