"""Reads, always scoped to one hospital (tenant isolation lives here, not in the views)."""
from __future__ import annotations

from django.db.models import Max, Prefetch
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404
from django.utils import timezone
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
    return with_pending_emr_changes(_with_deliveries(notifications_for_user(user).defer(*LIST_DEFERRED)))


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


def _newest_revision(notification: Notification) -> NotificationRevision | None:
    """Uses prefetched revisions when the queryset has them (lists, feed)."""
    revisions = list(notification.revisions.all())
    return max(revisions, key=lambda r: r.number) if revisions else None


def latest_delivery(notification: Notification) -> Delivery | None:
    """The delivery of the newest revision."""
    newest = _newest_revision(notification)
    return newest.delivery if newest is not None else None


def with_last_activity(qs):
    """Annotate `last_activity`: the later of the notification's own `updated_at` and the newest `updated_at`
    of its deliveries. The outbox never writes notification rows, so the connector's feed and the retention
    clock read the delivery side here. Coalesce first: PostgreSQL's GREATEST skips NULLs, SQLite's MAX(a, b)
    would return NULL for a notification without deliveries."""
    return qs.annotate(last_activity=Greatest(
        "updated_at", Coalesce(Max("revisions__delivery__updated_at"), "updated_at")))


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
    revision = _newest_revision(notification)
    delivery = revision.delivery if revision is not None else None
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
        "revision": revision.number,
        "kind": revision.get_kind_display() + ("・最小限の項目（Q&A 5、続報あり）"
                                               if getattr(revision, "scope", "full") == "minimum" else ""),
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.status == "retrying" else None,
    }


def notification_feed(hospital, since: str | None = None) -> list[dict]:
    """Confirmed notifications whose notification or delivery changed after `since`, oldest change first.
    `updated_at` is that change (the cursor for the next call)."""
    qs = with_last_activity(_with_deliveries(
        Notification.objects.filter(hospital=hospital, revision__gt=0).defer(*LIST_DEFERRED)))
    try:
        when = parse_datetime(since) if since else None
    except ValueError:
        raise FeedCursorError("since は ISO 8601 の日時で指定してください（例: 2022-09-26T09:00:00+09:00）。")
    if since and when is None:
        raise FeedCursorError("since は ISO 8601 の日時で指定してください（例: 2022-09-26T09:00:00+09:00）。")
    if when is not None:
        if timezone.is_naive(when):
            when = timezone.make_aware(when)
        qs = qs.filter(last_activity__gt=when)
    out = []
    for row in qs.order_by("last_activity", "id")[:500]:
        out.append({"id": str(row.uuid), "patient_id": row.patient_ref, "status": row.status,
                    "revision": row.revision, "updated_at": row.last_activity.isoformat(),
                    "delivery": delivery_status(row)})
    return out


def latest_revision(hospital, uuid, *, with_document: bool = False) -> NotificationRevision | None:
    """The newest revision of one of the hospital's notifications, with its notification and payload (the
    payload's encrypted content only when `with_document`)."""
    qs = (NotificationRevision.objects.filter(notification__hospital=hospital, notification__uuid=uuid)
          .select_related("definition", "notification", "payload").order_by("-number"))
    if not with_document:
        qs = qs.defer("payload__content")
    return qs.first()


PURGED_MESSAGE = ("この届出は保存期間を過ぎたため、患者情報とHER-SYSへ送信した文書を消去しました（消去日 {date}）。"
                  "文書とPDFはもう提供できません。電子カルテに保存済みの文書を参照してください"
                  "（受付番号などの送信記録は残っています）。")
MISSING_MESSAGE = ("この版の送信文書は保存されていません（この仕組みの導入前に確定され、文書を復元できませんでした）。"
                   "運用担当（中央管理者）に連絡してください。")


def revision_purged_at(revision: NotificationRevision):
    """When the retention purge erased this revision's values and document (None: not purged)."""
    return revision.notification.purged_at or revision.payload.purged_at


def purged_message(revision: NotificationRevision) -> str | None:
    """The Japanese explanation for a purged revision (for the 410 answers), None when it is not purged."""
    when = revision_purged_at(revision)
    return PURGED_MESSAGE.format(date=timezone.localdate(when).isoformat()) if when else None


# ---- EMR updates (issue 9) ----------------------------------------------------------------------------------------

def with_pending_emr_changes(qs):
    """Annotate `pending_emr_changes`: how many EMR changes wait for a person's decision (the worklist's 要対応).
    A subquery, so it never multiplies with the revision joins of `with_last_activity`."""
    from django.db.models import Count, IntegerField, OuterRef, Subquery

    from .models import EmrChange

    count = (EmrChange.objects.filter(notification=OuterRef("pk"), status=EmrChange.Status.PENDING)
             .order_by().values("notification").annotate(n=Count("pk")).values("n"))
    return qs.annotate(pending_emr_changes=Coalesce(Subquery(count, output_field=IntegerField()), 0))


def emr_changes_pending(notification: Notification) -> list:
    from .models import EmrChange

    return list(EmrChange.objects.filter(notification=notification, status=EmrChange.Status.PENDING)
                .select_related("extract"))


def _value_ja(item: dict | None, value, items: dict) -> str:
    from formengine.valuetypes import option_label
    from jpinput.dates import format_date_ja

    if value in (None, "", []):
        return "（なし）"
    if isinstance(value, dict):  # a test row: method・specimen・採取日・result
        parts = []
        for key, v in value.items():
            sub = items.get(f"tests.{key}")
            if v in (None, ""):
                continue
            text = _value_ja(sub, v, items)
            parts.append(f"{sub['label']} {text}" if sub and sub.get("type") == "date" else text)
        return "・".join(parts)
    if isinstance(value, list):
        return "、".join(_value_ja(item, v, items) for v in value)
    if item and item.get("type") == "date" and isinstance(value, str):
        from datetime import date

        try:
            return format_date_ja(date.fromisoformat(value))
        except ValueError:
            return value
    if item and item.get("values"):
        return option_label(item, value) or str(value)
    return str(value)


def emr_changes_presented(notification: Notification, values: dict | None = None) -> list[dict]:
    """The pending changes as the form page lists them: item, what the notification holds now, what the EMR says,
    where from and when."""
    from formengine.render import provenance_in_words

    from .models import EmrChange

    defn = notification.definition.definition
    items = {i["id"]: i for i in defn.get("items", [])}
    groups = {g["id"]: g for g in defn.get("groups", []) or []}
    values = notification.values if values is None else values
    out = []
    for change in emr_changes_pending(notification):
        item = items.get(change.item_id)
        label = (item or groups.get(change.item_id) or {}).get("label", change.item_id)
        if change.kind == EmrChange.Kind.TEST_ADD:
            now, new = "（なし）", _value_ja(None, change.new_value, items)
        elif change.kind == EmrChange.Kind.TEST_REMOVE:
            now, new = _value_ja(None, change.previous_value, items), "（電子カルテで取消・削除）"
        elif change.kind == EmrChange.Kind.TEST_UPDATE:
            now, new = _value_ja(None, change.previous_value, items), _value_ja(None, change.new_value, items)
        else:
            now, new = _value_ja(item, values.get(change.item_id), items), _value_ja(item, change.new_value, items)
        source = change.source
        out.append({"id": change.pk, "kind": change.kind, "kind_label": change.get_kind_display(), "label": label,
                    "current": now, "new": new, "detected_at": change.detected_at,
                    "source": provenance_in_words(source, defn) if ":" in source else f"電子カルテ（{source}）",
                    "class_change": change.kind == EmrChange.Kind.CLASS_CHANGE})
    return out


def conflicts_presented(notification: Notification, conflicts: list[dict]) -> list[dict]:
    """Per conflicting item: its label and, in words, this person's value, the other person's and the original."""
    defn = notification.definition.definition
    items = {i["id"]: i for i in defn.get("items", [])}
    groups = {g["id"]: g for g in defn.get("groups", []) or []}
    out = []
    for c in conflicts:
        item = items.get(c["item_id"])
        label = (item or groups.get(c["item_id"]) or {}).get("label", c["item_id"])

        def show(value, item=item):
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return " ／ ".join(_value_ja(None, row, items) for row in value)
            return _value_ja(item, value, items)

        out.append({"item_id": c["item_id"], "label": label, "mine": show(c["mine"]), "theirs": show(c["theirs"]),
                    "base": show(c["base"]) if "base" in c and c.get("base") is not None else "（なし）"})
    return out


def autosave_for(notification: Notification, user):
    """The person's unsaved input on this notification (autosave), or None."""
    from .models import AutosavedInput

    return AutosavedInput.objects.filter(notification=notification, user=user).first()
