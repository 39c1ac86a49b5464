from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.utils import timezone
from django.utils.dateparse import parse_date

from .models import AuditEvent

COLUMNS = ["at", "actor_username", "actor_role", "hospital_code", "action", "object_type", "object_id", "ip",
           "user_agent", "detail"]


def audit_events(*, hospital_code: str = "", since: str = "", until: str = ""):
    qs = AuditEvent.objects.order_by("at", "id")
    if hospital_code:
        qs = qs.filter(hospital_code=hospital_code)
    if since and parse_date(since):
        qs = qs.filter(at__date__gte=parse_date(since))
    if until and parse_date(until):
        qs = qs.filter(at__date__lte=parse_date(until))
    return qs


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    """No spreadsheet formulas from attacker-controlled text (user agents, failed user names)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def audit_csv_rows(qs) -> Iterator[str]:
    """CSV lines (UTF-8 with BOM for spreadsheet software), streamed. Times are local (JST, ``+09:00``): the
    hospital and the health centre read them against their own clocks."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(COLUMNS)
    for e in qs.iterator(chunk_size=2000):
        yield writer.writerow([_cell(v) for v in (
            timezone.localtime(e.at).isoformat(timespec="seconds"), e.actor_username, e.actor_role, e.hospital_code, e.action, e.object_type,
            e.object_id, e.ip or "", e.user_agent, json.dumps(e.detail, ensure_ascii=False))])
