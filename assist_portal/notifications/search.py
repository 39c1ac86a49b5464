"""Worklist search over values encrypted at rest, without decrypting rows: a keyed HMAC index.

Each notification gets tokens for its patient ID, name, kana (each whole and each space-separated part) and birth
date: ``HMAC-SHA256(SEARCH_INDEX_KEY, hospital | kind | normalised text)`` for every prefix of a text (prefix
match, which includes the exact value) and for the exact birth date. A query is normalised the same way and looked
up by its own token: one indexed equality, no row decrypted. The key is not the Fernet key of the values; without it
the tokens are indistinguishable from random (a dictionary of names cannot be tried against them), and the hospital
in the MAC means equal names in two hospitals do not even share a token.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Any

from django.conf import settings

from jpinput import normalise_date, to_fullwidth_katakana
from vocabulary import ids

MAX_PREFIX = 24  # longer queries are cut to this many characters (a prefix of what was indexed)
_SPACES = re.compile(r"[\s\u3000]+")
TEXT, DATE = "t", "d"


def _key() -> bytes:
    return str(settings.SEARCH_INDEX_KEY).encode("utf-8")


def token(hospital_id: int, kind: str, text: str, key: bytes | None = None) -> str:
    message = f"{hospital_id}|{kind}|{text}".encode("utf-8", "surrogatepass")
    return hmac.new(key or _key(), message, hashlib.sha256).hexdigest()


def normalise(text: Any) -> str:
    """Full-width/half-width, hiragana/katakana and case folded; spaces removed (山田 太郎 = 山田太郎)."""
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = to_fullwidth_katakana(text)  # やまだ, ﾔﾏﾀﾞ → ヤマダ
    return _SPACES.sub("", text).casefold()


def _parts(text: Any) -> list[str]:
    if not isinstance(text, str):
        return []
    whole = normalise(text)
    parts = [normalise(p) for p in _SPACES.split(unicodedata.normalize("NFKC", text)) if p.strip()]
    return [p for p in {whole, *parts} if p]


def index_tokens(hospital_id: int, patient_ref: str, values: dict, key: bytes | None = None) -> set[str]:
    texts = [*_parts(patient_ref), *_parts(values.get(ids.PATIENT_NAME)), *_parts(values.get(ids.PATIENT_NAME_KANA))]
    out = set()
    for text in texts:
        for end in range(1, min(len(text), MAX_PREFIX) + 1):
            out.add(token(hospital_id, TEXT, text[:end], key))
    birth = values.get(ids.PATIENT_BIRTH_DATE)
    if isinstance(birth, str) and birth:
        out.add(token(hospital_id, DATE, birth[:10], key))
    return out


def query_tokens(hospital_id: int, query: str) -> list[str]:
    """The tokens a query may match: the normalised text as a prefix, and the date it reads as (2021/1/10,
    R3.1.10, 令和3年1月10日 …) as an exact birth date."""
    out = []
    text = normalise(query)[:MAX_PREFIX]
    if text:
        out.append(token(hospital_id, TEXT, text))
    iso, _ = normalise_date(query)
    if iso:
        out.append(token(hospital_id, DATE, iso))
    return out


def search_index_update(notification) -> None:
    """Replace the notification's tokens with those of its current values (called in the writing transaction)."""
    from .models import SearchToken

    wanted = index_tokens(notification.hospital_id, notification.patient_ref, notification.values or {})
    existing = set(SearchToken.objects.filter(notification=notification).values_list("token", flat=True))
    if existing - wanted:
        SearchToken.objects.filter(notification=notification, token__in=existing - wanted).delete()
    SearchToken.objects.bulk_create(
        [SearchToken(hospital_id=notification.hospital_id, notification=notification, token=t)
         for t in wanted - existing], ignore_conflicts=True)
