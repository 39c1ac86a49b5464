"""Template filters that show dates, times and postal codes one way on every screen and on print.

``{% load ja_format %}`` then ``{{ value|date_ja }}`` → 2021年1月10日 (a date, a datetime in local time — JST — or an
ISO string), ``{{ value|datetime_ja }}`` → 2021年1月10日 14:05, ``{{ value|postal }}`` → 123-4567. The formatting is
``jpinput``'s, the same the form engine uses for the understood date under a date box. Anything else is shown as it
is (a value that cannot be read is never hidden)."""
from __future__ import annotations

from datetime import date, datetime

from django import template
from django.utils import timezone

from jpinput import format_date_ja, normalise_postal

register = template.Library()


def _as_date(value) -> date | None:
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


@register.filter
def date_ja(value):
    """2021-01-10 / date / datetime → 2021年1月10日; '' for None."""
    if value in (None, ""):
        return ""
    parsed = _as_date(value)
    return format_date_ja(parsed) if parsed else value


@register.filter
def datetime_ja(value):
    """An aware datetime → 2021年1月10日 14:05 in local time (JST); a date → 2021年1月10日."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        local = timezone.localtime(value) if timezone.is_aware(value) else value
        return f"{format_date_ja(local.date())} {local:%H:%M}"
    return date_ja(value)


@register.filter
def postal(value):
    """4600008 / 〒460-0008 → 460-0008; anything that is not 7 digits stays as it is."""
    if value in (None, ""):
        return ""
    return normalise_postal(value) or value


@register.filter
def condition_ja(condition, definition):
    """A display/rule condition read back in Japanese (formengine.render.condition_in_words)."""
    from formengine.render import condition_in_words

    if not condition:
        return ""
    return condition_in_words(condition, definition if isinstance(definition, dict) else {})


@register.filter
def rule_ja(rule, definition):
    """What a structured rule does, in Japanese (formengine.render.rule_in_words)."""
    from formengine.render import rule_in_words

    return rule_in_words(rule, definition if isinstance(definition, dict) else {})


@register.filter
def builder_items(definition):
    """The items a condition can name, for the structured editor on the page (ids, labels, types, choices)."""
    from formengine.valuetypes import options_of

    out = []
    for item in (definition or {}).get("items", []) if isinstance(definition, dict) else []:
        if isinstance(item, dict) and "id" in item:
            out.append({"id": item["id"], "label": item.get("label", item["id"]), "type": item.get("type", "text"),
                        "group": item.get("group", ""),
                        "values": [{"code": c, "label": label} for c, label in options_of(item)]})
    return out


@register.filter
def duration_ja(seconds):
    """Seconds → 45秒 / 12分 / 3時間5分 / 2日3時間; '' for None. Negative values read as their size."""
    if seconds in (None, ""):
        return ""
    s = int(abs(float(seconds)))
    if s < 60:
        return f"{s}秒"
    m = s // 60
    if m < 60:
        return f"{m}分"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}時間{m}分" if m else f"{h}時間"
    d, h = divmod(h, 24)
    return f"{d}日{h}時間" if h else f"{d}日"
