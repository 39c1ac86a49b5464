"""Writes: heartbeats of workers and of the scheduler."""
from __future__ import annotations

from django.utils import timezone

from .models import Heartbeat


def heartbeat_record(*, name: str, kind: str, queues=(), pid: int | None = None, started_at=None) -> None:
    """Upsert the row of `name`: seen now (and started at `started_at`, default: when the row is created)."""
    now = timezone.now()
    defaults = {"kind": kind, "queues": sorted(queues), "pid": pid, "seen_at": now}
    if started_at is not None:
        defaults["started_at"] = started_at
    Heartbeat.objects.update_or_create(name=name, defaults=defaults,
                                       create_defaults={"started_at": now, **defaults})


def heartbeat_forget(*, name: str) -> None:
    """A worker that shuts down cleanly removes its row, so readiness notices at once, not after the stale window."""
    Heartbeat.objects.filter(name=name).delete()
