"""Strict parsing of request input shared by the apps: an id is ASCII digits only ("²" and "١" are digits to
`str.isdigit` but not to PostgreSQL), text never carries NUL, dates are real dates. Each returns None for
anything else, so views answer 400 (or 404) with a clear message instead of failing deeper down."""
from __future__ import annotations

import re
from datetime import date

_ID = re.compile(r"[0-9]{1,18}")
_CODE = re.compile(r"[0-9A-Za-z_\-]{1,20}")


def ascii_id(value) -> int | None:
    """A primary key from a form or query value: 1–18 ASCII digits, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if not isinstance(value, str) or not _ID.fullmatch(value):
        return None
    return int(value)


def ascii_ids(values) -> list[int] | None:
    """Every value an ascii_id, else None."""
    out = [ascii_id(v) for v in values]
    return None if any(v is None for v in out) else out


def code(value) -> str | None:
    """A short code such as a hospital code (ASCII letters, digits, `-`, `_`), else None."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def iso_date(value) -> date | None:
    """A YYYY-MM-DD date that exists, else None (no exception for 2024-13-45 or NUL)."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


#: Real UTC offsets run from -12:00 to +14:00; PostgreSQL refuses beyond ±15:59 (a 500 if it got there).
MAX_UTC_OFFSET_HOURS = 14
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                       r"(Z|[+-][0-9]{2}:?[0-9]{2})?")


def iso_datetime(value):
    """An ISO 8601 date-time (offset within ±14:00; without one, the server's time zone) as an aware datetime,
    else None."""
    from datetime import timedelta

    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return None
    try:
        when = parse_datetime(value)
    except ValueError:
        return None
    if when is None:
        return None
    if timezone.is_naive(when):
        return timezone.make_aware(when)
    offset = when.utcoffset()
    if offset is None or abs(offset) > timedelta(hours=MAX_UTC_OFFSET_HOURS):
        return None
    return when


def clean_text(value, max_length: int) -> str | None:
    """Text without NUL or other control characters (tab and newline allowed), at most max_length; else None."""
    if not isinstance(value, str) or len(value) > max_length:
        return None
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value) or "\x7f" in value:
        return None
    return value


def bad_request(request, message: str):
    """A 400 page with one clear message (Japanese)."""
    from django.shortcuts import render

    return render(request, "400.html", {"message": message}, status=400)
