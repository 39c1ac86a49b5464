"""Reads of the outbox for people who watch it (the central delivery monitor)."""
from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone

from .models import Delivery
from .services import delivery_stuck


def deliveries_for_monitor(status: str = "", now=None, limit: int = 200) -> list[dict]:
    """The newest deliveries (of one status) with what a person needs to judge them: age while pending, when the
    next attempt is due (or the running attempt's lease ends) and whether it is stuck (nobody is working on it)."""
    now = now or timezone.now()
    qs = Delivery.objects.select_related("hospital")
    if status:
        qs = qs.filter(status=status)
    rows = []
    for d in qs[:limit]:
        pending = d.status in Delivery.PENDING
        if d.status == Delivery.Status.SENDING:
            next_at = d.lease_until
        elif d.status in (Delivery.Status.QUEUED, Delivery.Status.RETRYING):
            next_at = d.next_attempt_at
        else:
            next_at = None
        rows.append({"d": d, "pending": pending,
                     "age_seconds": (now - (d.redriven_at or d.created_at)).total_seconds() if pending else None,
                     "next_at": next_at, "next_in_seconds": (next_at - now).total_seconds() if next_at else None,
                     "stuck": delivery_stuck(d, now)})
    return rows


def pending_by_hospital(now=None) -> list[dict]:
    """Per hospital: how many deliveries are pending and how old the oldest is (oldest first)."""
    now = now or timezone.now()
    rows = (Delivery.objects.filter(status__in=Delivery.PENDING).values("hospital__code", "hospital__name")
            .annotate(pending=Count("id"), oldest=Min("created_at")).order_by("oldest"))
    return [{"code": r["hospital__code"], "name": r["hospital__name"], "pending": r["pending"],
             "oldest_seconds": (now - r["oldest"]).total_seconds()} for r in rows]
