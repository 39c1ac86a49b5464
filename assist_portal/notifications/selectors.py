"""Reads, always scoped to one hospital (tenant isolation lives here, not in the views)."""
from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from uuid import UUID

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    FilteredRelation,
    Max,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from assist_portal.delivery.models import Delivery
from assist_portal.sqlcache import CompiledModelQuery, CompiledQuery

from .models import AutosavedInput, EmrChange, Notification, NotificationRevision, SearchToken


class FeedCursorError(ValueError):
    pass


def notifications_for_user(user):
    if not user.is_hospital_staff:
        return Notification.objects.none()
    return Notification.objects.filter(hospital_id=user.hospital_id).select_related("definition")


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
    "accepted": "HER-SYSが受理しました。受付番号を控えてください。",
    "rejected": "HER-SYSが受け付けませんでした。理由を確認し、届出を開いて内容を修正してから、もう一度確定してください。",
    "held": "FAXで届出済みとして記録したため、HER-SYSへの電子送信は保留しています。保健所と調整のうえ、"
            "「電子送信も行う」か「FAXのみで完了」を選んでください。",
    "withheld": "FAXのみで届出を完了しました。この版はHER-SYSへは送信しません。",
}
FAX_ADVICE = "届出の期限に間に合わない場合は、紙の様式を印刷して保健所へFAXしてください。"


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}時間{minutes % 60}分" if minutes >= 60 else f"{max(minutes, 1)}分"


def delivery_wording(delivery: Delivery, now=None) -> dict:
    """The one place that words a delivery for people (status page, list, feed), from its state and how long it
    has been pending: 送信中 only while an attempt is live (its lease runs); after DELIVERY_DELAYED_SECONDS it says
    the delivery is late and offers the fax — once HER-SYS was asked whether it already holds the revision (or
    asking has been impossible for twice that long). Returns state, label, guidance, final, fax_offer, age.

    `fax_action` is where the FAX offer links to record a fax (the workflow's FAX state, issue 8); None until then.
    """
    now = now or timezone.now()
    status = delivery.status
    started = delivery.redriven_at or delivery.created_at
    age = max((now - started).total_seconds(), 0.0)
    pending = status in Delivery.PENDING
    live = status == Delivery.Status.SENDING and delivery.lease_until is not None and delivery.lease_until > now
    delay = settings.DELIVERY_DELAYED_SECONDS
    checked = delivery.hersys_check
    out = {"state": status, "label": delivery.get_status_display(), "guidance": GUIDANCE.get(status, ""),
           "final": status in (*Delivery.FINAL, Delivery.Status.DEAD, Delivery.Status.HELD), "fax_offer": False,
           "fax_action": None,
           "age_seconds": round(age) if pending else None}
    if pending and age >= delay and not live:
        out["state"], out["label"] = "delayed", "送信遅延"
        late = f"確定から{_minutes(age)}たっても、HER-SYSへの送信が完了していません。自動で再送を続けています。"
        if checked == Delivery.Check.ABSENT:
            out["guidance"] = late + "HER-SYSに照会し、まだ届いていないことを確認しました。" + FAX_ADVICE
            out["fax_offer"] = True
        elif checked == Delivery.Check.UNREACHABLE or age >= 2 * delay:
            out["guidance"] = late + "HER-SYSに接続できず、届いているかを確認できていません。" + FAX_ADVICE
            out["fax_offer"] = True
        else:
            out["guidance"] = late + "HER-SYSに届いているかを照会しています。しばらくお待ちください。"
    elif status == Delivery.Status.SENDING and live:
        out["guidance"] = "HER-SYSへ送信しています。"
    elif status == Delivery.Status.SENDING:
        out["state"], out["label"] = "interrupted", "再送待ち"
        out["guidance"] = ("送信処理が途中で止まりました。まもなく自動で再送します"
                           "（同じ識別キーで送るため、二重に登録されることはありません）。")
    elif status == Delivery.Status.QUEUED:
        out["guidance"] = ("送信の順番を待っています。通常は数秒で送信されます。" if age < 60 else
                           f"送信の順番を{_minutes(age)}待っています。自動で送信します。入力し直す必要はありません。")
    elif status == Delivery.Status.RETRYING:
        when = timezone.localtime(delivery.next_attempt_at).strftime("%H:%M")
        out["guidance"] = (f"HER-SYSに一時的に接続できないため、自動で再送します（次回 {when} 頃、これまで"
                           f"{delivery.attempts}回試行）。入力し直す必要はありません。")
    elif status == Delivery.Status.DEAD:
        found = ("HER-SYSに照会し、届いていないことを確認しました。" if checked == Delivery.Check.ABSENT else
                 "HER-SYSに届いているかは確認できていません。")
        out["guidance"] = ("HER-SYSへの自動送信を打ち切りました。" + found + "運用担当（中央管理者）が対応します。"
                           + FAX_ADVICE)
        out["fax_offer"] = True
    elif status == Delivery.Status.REJECTED and checked == Delivery.Check.OTHER:
        out["guidance"] = ("HER-SYSには、この届出の同じ版が別の内容で登録されています。古い内容のまま受理扱いには"
                           "していません。届出を開いて内容を確認し、もう一度確定してください（修正として送信されます）。")
    return out


def delivery_status(notification: Notification, revisions: list | None = None) -> dict:
    """What the user sees live: queued → sent → accepted, or a clear rejection (worded by `delivery_wording`).
    `revisions`: the notification's revisions when the caller already has them (`form_revisions`)."""
    if revisions is None:
        revision = _newest_revision(notification)
    else:
        revision = max(revisions, key=lambda r: r.number) if revisions else None
    delivery = revision.delivery if revision is not None else None
    if delivery is None:
        return {"status": "none", "state": "none", "label": "未送信", "final": False, "fax_offer": False,
                "fax_action": None, "guidance": "まだ確定していません。"}
    wording = delivery_wording(delivery)
    if wording["fax_offer"]:  # the FAX state (issue 8): record the fax on the status page's FAX section
        wording["fax_action"] = "#fax"
    return {
        **wording,
        "status": delivery.status,
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
    if getattr(notification, "has_pending_emr", None) is False:  # known from notification_for_form
        return out
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
# ---- the worklist ---------------------------------------------------------------------------------------------------

class WorkState(StrEnum):
    INPUT = "input"
    REVIEW = "review"
    SENDING = "sending"
    ACCEPTED = "accepted"
    ATTENTION = "attention"
    FOLLOWUP = "followup"


WORK_STATE_LABELS = {
    WorkState.INPUT: "入力中",
    WorkState.REVIEW: "医師確認待ち",
    WorkState.SENDING: "送信待ち・送信中",
    WorkState.ACCEPTED: "受理",
    WorkState.ATTENTION: "要対応",
    WorkState.FOLLOWUP: "続報待ち",
}
#: The order of the tabs and counts in the navigation.
WORK_STATES = [WorkState.INPUT, WorkState.REVIEW, WorkState.SENDING, WorkState.ATTENTION, WorkState.FOLLOWUP,
               WorkState.ACCEPTED]
PENDING_DELIVERY = (Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.RETRYING)


def _newest_revision_field(field: str):
    """The newest revision's `field` (e.g. its delivery's status), as a subquery (no rows fetched)."""
    return Subquery(NotificationRevision.objects.filter(notification=OuterRef("pk"), number=OuterRef("revision"))
                    .values(field)[:1])


def attention_reasons(now=None) -> dict[str, tuple[str, Q]]:
    """Why a case needs someone (要対応): reason code → (Japanese label, condition over the worklist's
    annotations). The one place to add a reason (e.g. new EMR data): the state, the filter, the counts and the
    banner all read it."""
    now = now or timezone.now()
    overdue_since = now - timedelta(minutes=settings.ACCEPTANCE_ALERT_MINUTES)
    return {
        "rejected": ("HER-SYSが差し戻し", Q(w_delivery_status=Delivery.Status.REJECTED)),
        "dead": ("送信停止", Q(w_delivery_status=Delivery.Status.DEAD)),
        "overdue": (f"{settings.ACCEPTANCE_ALERT_MINUTES:g}分以上受理されない",
                    Q(w_delivery_status__in=PENDING_DELIVERY, w_delivery_created__lt=overdue_since)),
        "emr": ("電子カルテに新しい情報", Q(w_emr_pending=True)),
        "fax": ("FAX送付済み・電子送信の要否が未定", Q(w_delivery_status=Delivery.Status.HELD)),
    }


def _attention_q(now=None) -> Q:
    q = Q(pk__in=[])
    for _, condition in attention_reasons(now).values():
        q |= condition
    return q


def with_work_state(qs, now=None, *, reasons: bool = True):
    """Annotate `work_state` (WorkState), computed in SQL from the notification and its newest delivery, and
    (`reasons`) one `attn_<code>` flag per 要対応 reason; the navigation's counts need only the state."""
    # The newest revision and its delivery as one LEFT JOIN (issue 13): as correlated subqueries they were
    # evaluated once per reference — seven subplans per row in the navigation's counts on every page.
    qs = qs.annotate(w_newest=FilteredRelation("revisions", condition=Q(revisions__number=F("revision"))))
    qs = qs.annotate(w_delivery_status=F("w_newest__delivery__status"),
                     w_delivery_created=F("w_newest__delivery__created_at"),
                     w_receipt=F("w_newest__delivery__receipt_id"),
                     w_emr_pending=Exists(EmrChange.objects.filter(notification=OuterRef("pk"),
                                                                   status=EmrChange.Status.PENDING)))
    if reasons:
        qs = qs.annotate(**{f"attn_{code}": Case(When(condition, then=Value(True)), default=Value(False),
                                                 output_field=BooleanField())
                            for code, (_, condition) in attention_reasons(now).items()})
    editing = (Q(status=Notification.Status.DRAFT)
               | Q(status=Notification.Status.CONFIRMED, has_unsent_changes=True))
    return qs.annotate(work_state=Case(
        When(Q(review_requested_at__isnull=False) & ~Q(status=Notification.Status.WITHDRAWN),
             then=Value(WorkState.REVIEW.value)),
        When(_attention_q(now), then=Value(WorkState.ATTENTION.value)),
        # Q&A 5: confirmed with the minimum items; the rest is still to be sent as an update
        When(follow_up_pending=True, then=Value(WorkState.FOLLOWUP.value)),
        When(editing, then=Value(WorkState.INPUT.value)),
        When(w_delivery_status__in=PENDING_DELIVERY, then=Value(WorkState.SENDING.value)),
        default=Value(WorkState.ACCEPTED.value), output_field=CharField()))


def _search(qs, user, query: str):
    from .search import query_tokens

    tokens = query_tokens(user.hospital_id, query)
    if not tokens:
        return qs
    return qs.filter(Exists(SearchToken.objects.filter(hospital_id=user.hospital_id, notification=OuterRef("pk"),
                                                       token__in=tokens)))


def _mine(qs, user):
    """「自分の担当」: a physician's cases handed to them; a clerk's cases they opened, handed off or edited last."""
    if user.is_physician:
        return qs.filter(Q(review_physician=user) | Q(review_physician__isnull=True, review_requested_at__isnull=False,
                                                       updated_by=user) | Q(created_by=user, revision=0))
    return qs.filter(Q(created_by=user) | Q(review_requested_by=user) | Q(updated_by=user))


def worklist(user, *, state: str | None = None, mine: bool = False, query: str = "", now=None):
    """The hospital's cases with their work state, newest change first; filtered by state, 「自分の担当」 and a
    search (patient ID, name, kana, birth date — through the keyed index, no row decrypted)."""
    qs = with_work_state(with_pending_emr_changes(
        notifications_for_user(user).defer(*LIST_DEFERRED, "review_note", "returned_note")
        .select_related("updated_by", "review_physician", "review_requested_by")), now)
    if state in set(WorkState):
        qs = qs.filter(work_state=state)
    if mine:
        qs = _mine(qs, user)
    if query:
        qs = _search(qs, user, query)
    return qs.order_by("-updated_at", "-id")


def _work_state_counts_query(hospital_id: int, overdue_since):
    now = overdue_since + timedelta(minutes=settings.ACCEPTANCE_ALERT_MINUTES)
    return (with_work_state(Notification.objects.filter(hospital_id=hospital_id).order_by(), now, reasons=False)
            .values("work_state").annotate(n=Count("pk")))


# On every page a physician or clerk sees: compiled once per process (its ORM compilation cost ~2 ms of CPU,
# PostgreSQL answers in a fraction of that; assist_portal.sqlcache).
_WORK_STATE_COUNTS = CompiledQuery(_work_state_counts_query)


def worklist_counts(user, now=None) -> dict[str, int]:
    """How many cases of the user's hospital are in each state (one query), for the navigation."""
    counts = {s.value: 0 for s in WORK_STATES}
    if not user.is_hospital_staff:
        return counts
    overdue_since = (now or timezone.now()) - timedelta(minutes=settings.ACCEPTANCE_ALERT_MINUTES)
    for state, n in _WORK_STATE_COUNTS.rows(user.hospital_id, overdue_since):
        counts[state] = n
    return counts


def default_work_state(user) -> str:
    """Each role lands on its own queue: a physician on 医師確認待ち, a clerk on 入力中."""
    return WorkState.REVIEW.value if user.is_physician else WorkState.INPUT.value


def attention_of(row, now=None) -> list[str]:
    """The labels of the reasons that put one worklist row into 要対応 (read from its `attn_*` annotations)."""
    return [label for code, (label, _) in attention_reasons(now).items() if getattr(row, f"attn_{code}", False)]


def hospital_physicians(hospital_id: int) -> list:
    """The physicians a draft can be handed to (active accounts of the same hospital)."""
    global _PHYSICIANS
    if _PHYSICIANS is None:  # on every form page (the hand-off's choice): compiled once per process (ADR 0018)
        from assist_portal.accounts.models import User

        _PHYSICIANS = CompiledModelQuery(User, _physicians_query)
    return _PHYSICIANS.all(hospital_id)


def _physicians_query(hospital_id: int):
    from assist_portal.accounts.models import User

    return User.objects.filter(hospital_id=hospital_id, role=User.Role.PHYSICIAN, is_active=True).order_by(
        "display_name", "username")


_PHYSICIANS: CompiledModelQuery | None = None


def form_revisions(notification: Notification) -> list[NotificationRevision]:
    """The notification's revisions with their deliveries and confirming users, in one query (values and review
    not decrypted), for the form page's delivery status and history table (issue 13: was a query for the
    status, one for the history and one per revision for its delivery)."""
    if not notification.revision:
        # Never confirmed: no revision exists (confirm, withdraw and reconcile number revisions from 1 and set
        # `revision` in the same transaction), so there is nothing to ask for.
        return []
    return list(NotificationRevision.objects.filter(notification=notification).order_by("number")
                .select_related("delivery", "confirmed_by").defer("values", "review"))


def notification_for_form(user, uuid) -> Notification:
    """`notification_get` for the form page, with `has_pending_emr` (Exists) so that a notification without
    pending EMR changes is not asked for them in a second query, and `current_definition_id` (the definition in
    effect for its hospital and form) for `notification_migrate_if_needed` (issue 13)."""
    try:
        uuid = uuid if isinstance(uuid, UUID) else UUID(str(uuid))
    except ValueError:
        raise Http404("届出が見つかりません。")
    row = _FOR_FORM.first(user.hospital_id, uuid, timezone.now()) if user.is_hospital_staff else None
    if row is None:
        raise Http404("届出が見つかりません。")
    return row


def launched_for_form(user, notification: Notification) -> Notification:
    """The notification an EMR launch just opened, as `notification_for_form` reads it. One the launch created in
    this transaction is used as it is (issue 13: no second read): no EMR change can be pending on it, nobody can
    have autosaved into it, and its definition is the one in effect now (the launch chose it so). Any other is
    read again."""
    if getattr(notification, "just_created", False) and notification.hospital_id == user.hospital_id:
        notification.has_pending_emr = False
        notification.current_definition_id = notification.definition_id
        return notification
    return notification_for_form(user, notification.uuid)


def autosave_for_form(notification: Notification, user):
    """`autosave_for`, without asking the database about a notification created in this request."""
    return None if getattr(notification, "just_created", False) else autosave_for(notification, user)


def _for_form_query(hospital_id: int, uuid: UUID, at):
    from assist_portal.formdefs.selectors import definition_id_in_effect_subquery

    return (Notification.objects.filter(hospital_id=hospital_id, uuid=uuid)
            .annotate(has_pending_emr=Exists(EmrChange.objects.filter(notification=OuterRef("pk"),
                                                                      status=EmrChange.Status.PENDING)),
                      current_definition_id=definition_id_in_effect_subquery(
                          form=OuterRef("form"), hospital=OuterRef("hospital_id"), at=at))
            .order_by())


# The form page's read (every GET and every save of the form): compiled once per process (ADR 0018).
_FOR_FORM = CompiledModelQuery(Notification, _for_form_query, related=("definition", "hospital"),
                               annotations=("has_pending_emr", "current_definition_id"),
                               defer=("definition__definition",))  # a published one: the process's copy


_ITEM_ID_IN_TEXT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


def rejection_items(notification: Notification, delivery: dict) -> list[dict]:
    """The items a rejection names (HER-SYS cites item ids in its diagnostics), each with its label and the id of
    its field on the form, so the page links straight to them. Empty unless the newest delivery was rejected."""
    if delivery.get("status") != Delivery.Status.REJECTED:
        return []
    items = {i["id"]: i for i in notification.definition.definition.get("items", []) if isinstance(i, dict)}
    out, seen = [], set()
    for item_id in _ITEM_ID_IN_TEXT.findall(delivery.get("error") or ""):
        if item_id in items and item_id not in seen:
            seen.add(item_id)
            out.append({"id": item_id, "label": items[item_id].get("label", item_id),
                        "html_id": "f-" + item_id.replace(".", "-")})
    return out


def fax_of(notification: Notification):
    """The FAX record of the newest revision (None when none was recorded)."""
    from .models import FaxRecord

    return (FaxRecord.objects.select_related("revision", "recorded_by", "decided_by")
            .filter(revision__notification=notification, revision__number=notification.revision).first())


def autosave_for(notification: Notification, user):
    """The person's unsaved input on this notification (autosave), or None."""
    return _AUTOSAVED.first(notification.pk, user.pk)


# On every form GET: compiled once per process (ADR 0018).
_AUTOSAVED = CompiledModelQuery(AutosavedInput, lambda notification_id, user_id: AutosavedInput.objects.filter(
    notification_id=notification_id, user_id=user_id).order_by())
