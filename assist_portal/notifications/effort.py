"""Effort measured from real use, per hospital and month, without patient values (issue 10): the share of items
pre-filled (EMR, hospital master, computed), adopted from a suggestion and typed; the median time from the launch
to the physician's first confirmation; rejections; and the items most often typed by hand although the form names
an EMR source for them (where the mapping should improve).

Read from what is stored anyway: each notification's provenance (no patient data: a source per item id) and the
first revision's time. "Adopted" is exactly what a person chose with 「採用」: the save marks that item's provenance
`adopted:<user>` (notifications.services), and it stays so until the value is changed by hand (then `typed`). A
value typed by hand that happens to equal the suggestion is typed. Values are never read."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from django.utils import timezone

from .models import Notification, NotificationRevision

PREFILLED = ("ss-mix2", "ssmix2", "fhir", "csv", "dwh", "emr", "hl7", "master", "computed")


def _kind(source: Any) -> str:
    """prefilled | adopted | typed, from one provenance string."""
    prefix = str(source).split(":", 1)[0].lower()
    if prefix in PREFILLED:
        return "prefilled"
    return "adopted" if prefix == "adopted" else "typed"


def _item_id(key: str) -> str:
    """tests[0].method → tests.method (the item of a repeat-group cell)."""
    if "[" in key and "]." in key:
        group, rest = key.split("[", 1)
        return f"{group}.{rest.split('].', 1)[1]}"
    return key


def effort_report(*, hospital=None) -> list[dict[str, Any]]:
    """One row per (hospital, month of first confirmation), newest first."""
    firsts = (NotificationRevision.objects.filter(number=1).select_related("notification__hospital",
                                                                           "notification__definition")
              .order_by("confirmed_at"))
    if hospital is not None:
        firsts = firsts.filter(notification__hospital=hospital)
    buckets: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {
        "notifications": 0, "prefilled": 0, "adopted": 0, "typed": 0, "minutes": [], "typed_with_source": Counter(),
        "notification_ids": []})
    labels: dict[str, str] = {}
    for rev in firsts.iterator():
        n: Notification = rev.notification
        month = timezone.localtime(rev.confirmed_at).strftime("%Y-%m")
        b = buckets[(n.hospital.code, month)]
        b["hospital_name"] = n.hospital.name
        b["notifications"] += 1
        b["notification_ids"].append(n.pk)
        b["minutes"].append((rev.confirmed_at - n.created_at).total_seconds() / 60)
        items = {i["id"]: i for i in n.definition.definition.get("items", [])}
        labels.update({iid: i.get("label", iid) for iid, i in items.items()})
        for key, source in (n.provenance or {}).items():
            kind = _kind(source)
            if kind == "typed" and items.get(_item_id(key), {}).get("emr_source"):
                b["typed_with_source"][_item_id(key)] += 1
            b[kind] += 1
    from assist_portal.delivery.models import Delivery  # notifications → delivery is an allowed edge

    rows = []
    for (code, month), b in buckets.items():
        total = b["prefilled"] + b["adopted"] + b["typed"]
        rejected = NotificationRevision.objects.filter(
            notification_id__in=b["notification_ids"],
            delivery__status__in=(Delivery.Status.REJECTED, Delivery.Status.DEAD)).count()
        rows.append({
            "hospital_code": code, "hospital_name": b["hospital_name"], "month": month,
            "month_label": f"{month[:4]}年{int(month[5:])}月",
            "notifications": b["notifications"], "items": total,
            "prefilled_items": b["prefilled"], "adopted_items": b["adopted"], "typed_items": b["typed"],
            "prefilled_pct": round(100 * b["prefilled"] / total, 1) if total else 0.0,
            "adopted_pct": round(100 * b["adopted"] / total, 1) if total else 0.0,
            "typed_pct": round(100 * b["typed"] / total, 1) if total else 0.0,
            "median_minutes_to_confirm": round(statistics.median(b["minutes"]), 1),
            "rejections": rejected,
            "typed_although_emr_source": [{"item_id": iid, "label": labels.get(iid, iid), "count": count}
                                          for iid, count in b["typed_with_source"].most_common(5)],
        })
    rows.sort(key=lambda r: (r["month"], r["hospital_code"]), reverse=True)
    return rows
