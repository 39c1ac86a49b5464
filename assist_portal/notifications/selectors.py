"""Reads, always scoped to one hospital (tenant isolation lives here, not in the views)."""
from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from django.utils.dateparse import parse_datetime

from assist_portal.delivery.models import Delivery

from .models import Notification, NotificationRevision


class FeedCursorError(ValueError):
    pass


def notifications_for_user(user):
    if not user.is_hospital_staff:
        return Notification.objects.none()
    return Notification.objects.filter(hospital_id=user.hospital_id).select_related("definition")


def notification_list_for_user(user):
    """The list page: name and delivery status only (patient values are not decrypted for it)."""
    return _with_deliveries(notifications_for_user(user).defer(*LIST_DEFERRED))


def notification_get(user, uuid) -> Notification:
    """The notification if it belongs to the user's hospital; 404 otherwise (no hint that it exists)."""
    row = notifications_for_user(user).select_related("hospital").filter(uuid=uuid).first()
    if row is None:
        raise Http404("届出が見つかりません。")
    return row


def _with_deliveries(qs):
    return qs.prefetch_related(Prefetch(
        "revisions", queryset=NotificationRevision.objects.select_related("delivery").defer("values")))


LIST_DEFERRED = ("values", "suggestions", "migration_report", "class_report_dates")


def latest_delivery(notification: Notification) -> Delivery | None:
    """The delivery of the newest revision; uses prefetched revisions when the queryset has them (lists)."""
    revisions = list(notification.revisions.all())
    if not revisions:
        return None
    newest = max(revisions, key=lambda r: r.number)
    try:
        return newest.delivery
    except Delivery.DoesNotExist:
        return None


GUIDANCE = {
    "queued": "送信の順番を待っています。通常は数秒で送信されます。",
    "sending": "HER-SYSへ送信しています。",
    "retrying": "HER-SYSに一時的に接続できないため、自動で再送します。入力し直す必要はありません。",
    "accepted": "HER-SYSが受理しました。受付番号を控えてください。",
    "rejected": "HER-SYSが受け付けませんでした。理由を確認し、届出を開いて内容を修正してから、もう一度確定してください。",
    "dead": "HER-SYSへの送信を繰り返しても届きませんでした。運用担当（中央管理者）が対応します。"
            "急ぐ場合は紙の様式を印刷して保健所へFAXしてください。",
}


def delivery_status(notification: Notification) -> dict:
    """What the user sees live: queued → sent → accepted, or a clear rejection."""
    delivery = latest_delivery(notification)
    if delivery is None:
        return {"status": "none", "label": "未送信", "final": False, "guidance": "まだ確定していません。"}
    return {
        "guidance": GUIDANCE.get(delivery.status, ""),
        "status": delivery.status,
        "label": delivery.get_status_display(),
        "final": delivery.status in (*Delivery.FINAL, Delivery.Status.DEAD),
        "receipt_id": delivery.receipt_id,
        "report_date": delivery.report_date.isoformat() if delivery.report_date else None,
        "attempts": delivery.attempts,
        "error": delivery.last_error,
        "revision": delivery.revision.number,
        "kind": delivery.revision.get_kind_display(),
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.status == "retrying" else None,
    }


def notification_feed(hospital, since: str | None = None) -> list[dict]:
    qs = _with_deliveries(Notification.objects.filter(hospital=hospital, revision__gt=0).defer(*LIST_DEFERRED))
    try:
        when = parse_datetime(since) if since else None
    except ValueError:
        raise FeedCursorError("since は ISO 8601 の日時で指定してください（例: 2022-09-26T09:00:00+09:00）。")
    if since and when is None:
        raise FeedCursorError("since は ISO 8601 の日時で指定してください（例: 2022-09-26T09:00:00+09:00）。")
    if when is not None:
        qs = qs.filter(updated_at__gt=when)
    out = []
    for row in qs.order_by("updated_at")[:500]:
        out.append({"id": str(row.uuid), "patient_id": row.patient_ref, "status": row.status,
                    "revision": row.revision, "updated_at": row.updated_at.isoformat(),
                    "delivery": delivery_status(row)})
    return out


def notification_document(hospital, uuid) -> dict | None:
    from assist_portal.delivery.services import build_bundle

    delivery = (Delivery.objects.filter(hospital=hospital, revision__notification__uuid=uuid)
                .order_by("-revision__number").select_related("revision__notification__hospital",
                                                              "revision__definition").first())
    return build_bundle(delivery) if delivery else None


def latest_revision(hospital, uuid) -> NotificationRevision | None:
    return (NotificationRevision.objects.filter(notification__hospital=hospital, notification__uuid=uuid)
            .select_related("definition").order_by("-number").first())
