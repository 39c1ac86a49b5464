"""Delivery problems reach people: a rejection, a dead letter or no acceptance within ACCEPTANCE_ALERT_MINUTES puts
the case into 要対応 (the worklist computes that; every user of the hospital sees the banner) and, once per revision
and problem, e-mails the confirming physician and the hospital's contact address (Django e-mail: the console
backend under `make run`). The e-mail carries no patient value: the hospital, the kind of problem and a link."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from assist_portal.audit.services import audit_record
from assist_portal.delivery.models import Delivery

from .models import DeliveryAlert, NotificationRevision

log = logging.getLogger(__name__)

PROBLEMS = {
    "rejected": "HER-SYSが届出を受け付けませんでした（差し戻し）。理由を確認し、届出を修正して確定し直してください。",
    "dead": "HER-SYSへの送信を繰り返しても届きませんでした（送信停止）。運用担当が対応します。"
            "急ぐ場合は紙の様式を印刷して保健所へFAXしてください。",
    "overdue": "確定した届出がまだHER-SYSに受理されていません。送信状況を確認してください。",
}


def on_delivery_problem(sender, *, delivery_id: int, problem: str, **kwargs) -> None:
    """Receiver of delivery.signals.delivery_problem (connected in NotificationsConfig.ready)."""
    revision = (NotificationRevision.objects.select_related("notification__hospital", "confirmed_by")
                .filter(delivery_id=delivery_id).first())
    if revision is not None:  # another producer's delivery: not ours to tell about
        delivery_alert(revision, problem)


def delivery_alert(revision: NotificationRevision, problem: str) -> bool:
    """E-mail the confirming physician and the hospital's contact about one revision's problem, once. Returns
    whether this call sent it."""
    notification = revision.notification
    hospital = notification.hospital
    recipients = sorted({a for a in (getattr(revision.confirmed_by, "email", ""), hospital.contact_email,
                                     settings.DELIVERY_ALERT_EMAIL) if a})
    try:
        with transaction.atomic():
            DeliveryAlert.objects.create(revision=revision, problem=problem, recipients=len(recipients))
    except IntegrityError:
        return False  # told already
    link = settings.PUBLIC_BASE_URL + reverse("notifications:status", args=[notification.uuid])
    if recipients:
        body = (f"{hospital.name} 様\n\n{PROBLEMS.get(problem, PROBLEMS['overdue'])}\n\n"
                f"届出（第{revision.number}版）の送信状況: {link}\n\n"
                "このメールには患者の情報を含めていません。内容はログインしてご確認ください。\n— HER-SYS登録補助")
        try:
            send_mail(f"【要対応】HER-SYSへの届出の送信（{hospital.name}）", body, None, recipients)
        except Exception:  # the banner and the worklist still show it; a mail server outage must not hide that
            log.exception("delivery alert e-mail for revision %s failed", revision.pk)
    audit_record("notification.alert", hospital_code=hospital.code, obj=notification, revision=revision.number,
                 problem=problem, recipients=len(recipients))
    return True


def overdue_alerts_send(now=None) -> int:
    """Revisions confirmed more than ACCEPTANCE_ALERT_MINUTES ago and still not accepted (queued, sending,
    retrying): tell people once (beat runs this every few minutes)."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ACCEPTANCE_ALERT_MINUTES)
    pending = (NotificationRevision.objects
               .filter(delivery__status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING,
                                              Delivery.Status.RETRYING], delivery__created_at__lt=cutoff)
               .exclude(alerts__problem="overdue")
               .select_related("notification__hospital", "confirmed_by")[:500])
    return sum(delivery_alert(revision, "overdue") for revision in pending)
