"""Delivery to HER-SYS. `delivery_transition` is the one place that changes a delivery's status."""
from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from assist_portal.audit.services import audit_record
from assist_portal.notifications.models import Notification

from .models import Attempt, Delivery

log = logging.getLogger(__name__)

ALLOWED = {
    Delivery.Status.QUEUED: {Delivery.Status.SENDING},
    Delivery.Status.RETRYING: {Delivery.Status.SENDING},
    Delivery.Status.SENDING: {Delivery.Status.ACCEPTED, Delivery.Status.REJECTED, Delivery.Status.RETRYING,
                              Delivery.Status.DEAD, Delivery.Status.SENDING},
    Delivery.Status.DEAD: {Delivery.Status.QUEUED},
    Delivery.Status.REJECTED: set(),
    Delivery.Status.ACCEPTED: set(),
}


class TransitionError(Exception):
    pass


def delivery_transition(delivery: Delivery, status: str, **fields) -> Delivery:
    """Move a (row-locked) delivery to `status`, enforcing the state machine, and save it."""
    if status not in ALLOWED[delivery.status]:
        raise TransitionError(f"{delivery.status} → {status} は許可されていません")
    delivery.status = status
    for key, value in fields.items():
        setattr(delivery, key, value)
    delivery.updated_at = timezone.now()
    delivery.save()
    return delivery


def delivery_create(revision) -> Delivery:
    """Outbox row for a confirmed revision; must run inside the confirming transaction. The task is enqueued
    only after commit; if that enqueue is lost, the sweeper finds the row."""
    notification = revision.notification
    delivery = Delivery.objects.create(
        revision=revision, hospital_id=notification.hospital_id,
        idempotency_key=f"{notification.uuid}:{revision.number}",
    )
    transaction.on_commit(lambda: delivery_enqueue(delivery.pk))
    return delivery


def delivery_enqueue(delivery_id: int, countdown: float | None = None) -> None:
    from .tasks import deliver

    try:
        deliver.apply_async(args=[delivery_id], countdown=countdown)
    except Exception:  # broker down: the sweeper will pick the row up
        log.warning("could not enqueue delivery %s; the sweeper will retry", delivery_id, exc_info=True)


@lru_cache(maxsize=1)
def hersys_client():
    """One client per worker process. Production puts the CA and the worker's client certificate and key at
    HERSYS_PKI_DIR/{ca.pem, client.pem, client-key.pem}; only when they are absent and we talk to the local
    sandbox (demo, tests) is a development PKI generated there. Real certificates are never touched."""
    from pathlib import Path

    from hersys_client import HersysClient

    pki = Path(settings.HERSYS_PKI_DIR)
    ca, cert, key = pki / "ca.pem", pki / "client.pem", pki / "client-key.pem"
    if not (ca.exists() and cert.exists() and key.exists()):
        if not _is_local_sandbox(settings.HERSYS_API_URL):
            raise RuntimeError(f"HER-SYSのクライアント証明書がありません: {pki}/(ca.pem, client.pem, client-key.pem)")
        from hersys_client.devpki import ensure_dev_pki

        ensure_dev_pki(pki)
    return HersysClient(settings.HERSYS_API_URL, settings.HERSYS_CLIENT_ID, settings.HERSYS_CLIENT_SECRET,
                        cert=(str(cert), str(key)), ca_path=str(ca), timeout=settings.HERSYS_TIMEOUT_SECONDS)


def _is_local_sandbox(url: str) -> bool:
    from urllib.parse import urlparse

    return (urlparse(url).hostname or "") in {"127.0.0.1", "localhost", "::1", "sandbox"}


def _claim(delivery_id: int) -> tuple[Delivery, Attempt] | None:
    """Take a lease on a delivery that is due. Returns None when it is final, leased elsewhere or not due."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(of=("self",))
                    .select_related("hospital", "revision__definition", "revision__notification__hospital")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status in (*Delivery.FINAL, Delivery.Status.DEAD):
            return None
        if delivery.status == Delivery.Status.SENDING and delivery.lease_until and delivery.lease_until > now:
            # Another worker holds the lease, or one died holding it (a redelivered task): look again when the
            # lease runs out instead of waiting for the sweeper.
            remaining = (delivery.lease_until - now).total_seconds()
            transaction.on_commit(lambda: delivery_enqueue(delivery_id, countdown=remaining + 1))
            return None
        if delivery.status == Delivery.Status.RETRYING and delivery.next_attempt_at > now:
            return None
        if _earlier_revision_pending(delivery):
            return None  # sent when the earlier one is accepted (see _record), or by the sweeper
        delivery_transition(delivery, Delivery.Status.SENDING, attempts=delivery.attempts + 1,
                            lease_until=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS))
        number = Attempt.objects.filter(delivery=delivery).count() + 1  # keeps counting across re-drives
        attempt = Attempt.objects.create(delivery=delivery, number=number,
                                         worker=f"{socket.gethostname()}:{os.getpid()}")
    return delivery, attempt


def _earlier_revision_pending(delivery: Delivery) -> bool:
    """Revisions of one notification reach HER-SYS in order: an update or withdrawal never overtakes the
    notification it changes (that would be refused, or leave HER-SYS and the portal disagreeing)."""
    revision = delivery.revision
    return Delivery.objects.filter(revision__notification_id=revision.notification_id,
                                   revision__number__lt=revision.number).exclude(
        status__in=Delivery.FINAL).exists()


def _enqueue_next_revision(delivery: Delivery) -> None:
    following = (Delivery.objects.filter(revision__notification_id=delivery.revision.notification_id,
                                         revision__number__gt=delivery.revision.number,
                                         status=Delivery.Status.QUEUED)
                 .order_by("revision__number").values_list("pk", flat=True).first())
    if following:
        transaction.on_commit(lambda: delivery_enqueue(following))


def build_bundle(delivery: Delivery) -> dict:
    """The FHIR document Bundle for one revision: only HER-SYS items leave the data centre."""
    from assist_portal.formdefs.selectors import item_set_version
    from formengine import to_questionnaire_response
    from hersys_client import build_document_bundle

    revision = delivery.revision
    notification = revision.notification
    canonical = f"{settings.QUESTIONNAIRE_CANONICAL}|{item_set_version(revision.definition)}"
    qr = to_questionnaire_response(revision.definition.definition, revision.values,
                                   questionnaire_canonical=canonical, status=revision.kind)
    return build_document_bundle(
        notification_id=str(notification.uuid), revision=revision.number, status=revision.kind,
        questionnaire_response=qr, items=revision.values, facility=notification.hospital.facility_master(),
    )


def delivery_attempt(delivery_id: int) -> Delivery | None:
    """One try: claim, send (outside any transaction), record the outcome. Safe to run twice: the
    idempotency key makes HER-SYS answer a replay with the original receipt."""
    from hersys_client import PermanentError, RetryableError, backoff_delay

    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    delivery, attempt = claimed
    try:
        bundle = build_bundle(delivery)
    except DatabaseError:
        raise  # the database, not the data: the task retries, the lease and the sweeper cover the rest
    except Exception as exc:  # our data or code is wrong: retrying cannot help, a person must look
        log.exception("delivery %s: bundle could not be built", delivery_id)
        return _record(delivery, attempt, Attempt.Outcome.PERMANENT,
                       f"送信データを作成できませんでした（{type(exc).__name__}）。サポート窓口へ連絡してください。",
                       None, dead=True)
    try:
        receipt = hersys_client().submit(bundle, delivery.idempotency_key)
    except RetryableError as exc:
        delay = backoff_delay(delivery.attempts, retry_after=exc.retry_after, base=settings.DELIVERY_BACKOFF_BASE,
                              cap=settings.DELIVERY_BACKOFF_CAP)
        return _record(delivery, attempt, Attempt.Outcome.RETRYABLE, str(exc), getattr(exc, "status", None), delay)
    except PermanentError as exc:
        return _record(delivery, attempt, Attempt.Outcome.PERMANENT, str(exc), getattr(exc, "status", None))
    except Exception as exc:  # unexpected: retried within the window, then a dead letter for people
        log.exception("delivery %s failed unexpectedly", delivery_id)
        return _record(delivery, attempt, Attempt.Outcome.RETRYABLE, f"内部エラー: {type(exc).__name__}", None,
                       backoff_delay(delivery.attempts, base=settings.DELIVERY_BACKOFF_BASE,
                                     cap=settings.DELIVERY_BACKOFF_CAP))
    return _record(delivery, attempt, Attempt.Outcome.ACCEPTED, "受理されました", 200, receipt=receipt)


def _record(delivery: Delivery, attempt: Attempt, outcome: str, message: str, http_status: int | None,
            delay: float | None = None, receipt=None, dead: bool = False) -> Delivery:
    now = timezone.now()
    with transaction.atomic():
        row = Delivery.objects.select_for_update(of=("self",)).select_related("hospital").get(pk=delivery.pk)
        Attempt.objects.filter(pk=attempt.pk).update(outcome=outcome, message=message[:2000],
                                                     http_status=http_status, finished_at=now)
        if row.status != Delivery.Status.SENDING:
            return row  # someone else finished it meanwhile (e.g. a sweeper-driven replay)
        if outcome == Attempt.Outcome.ACCEPTED:
            delivery_transition(row, Delivery.Status.ACCEPTED, receipt_id=receipt.receipt_id,
                                report_date=receipt.report_date, last_error="", lease_until=None)
            _enqueue_next_revision(row)
        elif dead:
            delivery_transition(row, Delivery.Status.DEAD, last_error=message, lease_until=None)
        elif outcome == Attempt.Outcome.PERMANENT:
            delivery_transition(row, Delivery.Status.REJECTED, last_error=message, lease_until=None)
        elif _budget_spent(row, now):
            delivery_transition(row, Delivery.Status.DEAD, last_error=message, lease_until=None)
        else:
            delivery_transition(row, Delivery.Status.RETRYING, last_error=message, lease_until=None,
                                next_attempt_at=now + timedelta(seconds=delay or 0))
        if row.status != Delivery.Status.RETRYING:
            # The connector's feed and the retention clock follow the notification's updated_at.
            Notification.objects.filter(pk=row.revision.notification_id).update(updated_at=now)
    audit_record(f"delivery.{outcome}", hospital_code=row.hospital.code, obj=row, attempt=attempt.number,
                 http_status=http_status, status=row.status)
    if row.status == Delivery.Status.RETRYING:
        delivery_enqueue(row.pk, countdown=delay)
    return row


def _budget_spent(delivery: Delivery, now) -> bool:
    """Retries stop (dead letter, visible to people) after DELIVERY_RETRY_WINDOW_SECONDS of trying, or after
    DELIVERY_MAX_ATTEMPTS tries when that is set (0 = no attempt limit)."""
    if settings.DELIVERY_MAX_ATTEMPTS and delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        return True
    started = delivery.redriven_at or delivery.created_at
    return (now - started).total_seconds() >= settings.DELIVERY_RETRY_WINDOW_SECONDS


def delivery_sweep(now=None) -> int:
    """Re-enqueue deliveries whose task was lost: queued/retrying and due, or sending with an expired lease."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.DELIVERY_SWEEP_GRACE_SECONDS)  # their own task is probably on its way
    due = list(
        Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.RETRYING],
                                next_attempt_at__lte=grace).values_list("pk", flat=True)[:500]
    ) + list(
        Delivery.objects.filter(status=Delivery.Status.SENDING, lease_until__lt=now).values_list("pk", flat=True)[:500]
    )
    for pk in due:
        delivery_enqueue(pk)
    return len(due)


def delivery_redrive(delivery: Delivery, user, request=None) -> Delivery:
    """Central admin re-drives a dead letter after fixing the cause."""
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        delivery_transition(row, Delivery.Status.QUEUED, attempts=0, next_attempt_at=timezone.now(),
                            redriven_at=timezone.now())
        audit_record("delivery.redrive", request=request, user=user, obj=row)
        transaction.on_commit(lambda: delivery_enqueue(row.pk))
    return row
