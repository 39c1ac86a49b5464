"""Reads: what /readyz reports. No patient data: counts, ages in seconds and queue names only."""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef
from django.utils import timezone

from .models import Heartbeat


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def broker_ok(timeout: float = 1.0) -> bool:
    """Can this host reach the Celery broker the app publishes to? Redis: a PING with short timeouts and no
    retries; the filesystem broker of the embedded default: its folder is writable; anything else: kombu."""
    from celery import current_app as app  # the project's app (loaded with the assist_portal package)

    url = app.conf.broker_url or ""
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme == "filesystem":
            options = app.conf.broker_transport_options or {}
            folder = Path(options.get("data_folder_out", ""))
            return folder.is_dir() and os.access(folder, os.W_OK)
        if scheme in ("redis", "rediss"):
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0))
            try:
                return bool(client.ping())
            finally:
                client.close()
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:
        return False


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 1)


def workers_status(now: datetime) -> dict:
    """Per queue that must be consumed: how many workers wrote a heartbeat within the stale window."""
    stale = now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    rows = list(Heartbeat.objects.filter(kind=Heartbeat.Kind.WORKER).values_list("queues", "seen_at"))
    queues = {}
    for queue in settings.READYZ_QUEUES:
        seen = [seen_at for names, seen_at in rows if queue in (names or [])]
        queues[queue] = {"alive": sum(1 for s in seen if s >= stale),
                         "last_seen_seconds": _age(now, max(seen) if seen else None)}
    dead = [q for q, info in queues.items() if not info["alive"]]
    result = {"ok": not dead, "queues": queues}
    if dead:
        result["detail"] = f"キュー {', '.join(dead)} を処理するワーカーから応答がありません"
    return result


def scheduler_status(now: datetime) -> dict:
    seen = (Heartbeat.objects.filter(kind=Heartbeat.Kind.SCHEDULER).order_by("-seen_at")
            .values_list("seen_at", flat=True).first())
    ok = seen is not None and seen >= now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    result = {"ok": ok, "last_seen_seconds": _age(now, seen)}
    if not ok:
        result["detail"] = "スケジューラ（celery beat）の定期処理が動いていません（送信の見直しが止まります）"
    return result


def deliveries_status(now: datetime) -> dict:
    """Pending deliveries (queued, retrying, sending): how many, how old the oldest is, and how long the most overdue
    one has been due without being sent. Only the last decides readiness: a delivery retrying for hours because
    HER-SYS is down is pending but not overdue (its next attempt lies ahead); a due one nobody picks up is."""
    from assist_portal.delivery.models import Delivery

    status = Delivery.Status
    pending = Delivery.objects.filter(status__in=[status.QUEUED, status.RETRYING, status.SENDING])
    summary = pending.aggregate(count=Count("id"), oldest=Min("created_at"))
    # A later revision waits, queued, until the earlier one of the same notification is final: not overdue.
    earlier_open = (Delivery.objects.filter(stream=OuterRef("stream"), sequence__lt=OuterRef("sequence"))
                    .exclude(status__in=Delivery.FINAL))
    due = (pending.filter(status__in=[status.QUEUED, status.RETRYING])
           .annotate(waiting=Exists(earlier_open)).filter(waiting=False)
           .aggregate(at=Min("next_attempt_at"))["at"])
    lease = pending.filter(status=status.SENDING).aggregate(at=Min("lease_until"))["at"]
    overdue_since = min((t for t in (due, lease) if t is not None), default=None)
    overdue = _age(now, overdue_since) if overdue_since is not None and overdue_since < now else 0.0
    limit = settings.READYZ_MAX_DELIVERY_LAG_SECONDS
    by_status = dict(pending.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    result = {"ok": overdue <= limit, "pending": summary["count"], "by_status": by_status,
              "oldest_pending_seconds": _age(now, summary["oldest"]), "overdue_seconds": overdue,
              "max_overdue_seconds": limit}
    if not result["ok"]:
        result["detail"] = f"送信予定時刻を{int(overdue)}秒過ぎても送信されていない届出があります"
    return result


def readiness(now: datetime | None = None) -> tuple[bool, dict]:
    """(ready, body) for /readyz. Every check runs even when one fails, so the body names all that is wrong."""
    now = now or timezone.now()
    if not database_ok():
        checks = {"database": {"ok": False, "detail": "データベースに接続できません"}}
    else:
        checks = {"database": {"ok": True}}
        broker = broker_ok()
        checks["broker"] = {"ok": broker} if broker else {"ok": False, "detail": "メッセージブローカーに接続できません"}
        checks["workers"] = workers_status(now)
        if settings.READYZ_SCHEDULER:
            checks["scheduler"] = scheduler_status(now)
        checks["deliveries"] = deliveries_status(now)
    failing = [name for name, check in checks.items() if not check["ok"]]
    return not failing, {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
