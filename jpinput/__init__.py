"""Japanese input as hospital staff type it: dates (Western and 和暦), kana, HER-SYS characters, postal codes.

Plain Python (no Django): the same functions serve the page (through the JSON endpoints in
``assist_portal.notifications.input_views``) and the server. Every user-facing message is Japanese.
See docs/adr/0013-japanese-input.md.
"""
from __future__ import annotations

from .dates import (
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
from .kana import check_hersys_text, check_kana, kana_feedback, to_fullwidth_katakana
from .postal import Address, address_mismatch, lookup, normalise_postal, postal_feedback

__all__ = [
    "Address",
    "IncompleteDate",
    "InvalidDate",
    "ParsedDate",
    "address_mismatch",
    "check_hersys_text",
    "check_kana",
    "date_feedback",
    "format_date_ja",
    "format_date_ja_with_era",
    "format_date_wareki",
    "kana_feedback",
    "lookup",
    "normalise_date",
    "normalise_postal",
    "parse_date",
    "postal_feedback",
    "to_fullwidth_katakana",
]
