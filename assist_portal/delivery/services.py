"""Delivery to HER-SYS. `delivery_transition` is the one place that changes a delivery's status.

A generic outbox: it sends a frozen `Payload` (bytes built by the caller) under an idempotency key that covers the
bytes' hash, keeps revisions of one stream in order, and writes only its own rows (never the caller's).
"""
from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from assist_portal.audit.events import AuditAction
from assist_portal.audit.services import audit_record

from .models import Attempt, Delivery, Payload

log = logging.getLogger(__name__)

ALLOWED = {
    Delivery.Status.QUEUED: {Delivery.Status.SENDING, Delivery.Status.HELD},
    Delivery.Status.RETRYING: {Delivery.Status.SENDING, Delivery.Status.HELD},
    Delivery.Status.SENDING: {Delivery.Status.ACCEPTED, Delivery.Status.REJECTED, Delivery.Status.RETRYING,
                              Delivery.Status.DEAD, Delivery.Status.SENDING},
    Delivery.Status.DEAD: {Delivery.Status.QUEUED, Delivery.Status.HELD},
    Delivery.Status.HELD: {Delivery.Status.QUEUED, Delivery.Status.WITHHELD},
    Delivery.Status.REJECTED: set(),
    Delivery.Status.ACCEPTED: set(),
    Delivery.Status.WITHHELD: set(),
}


OUTCOME_ACTIONS = {
    Attempt.Outcome.ACCEPTED: AuditAction.DELIVERY_ACCEPTED,
    Attempt.Outcome.RETRYABLE: AuditAction.DELIVERY_RETRYABLE,
    Attempt.Outcome.PERMANENT: AuditAction.DELIVERY_PERMANENT,
    Attempt.Outcome.STARTED: AuditAction.DELIVERY_STARTED,
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
    delivery.save(update_fields=["status", "updated_at", *fields])
    return delivery


def payload_create(*, content: bytes, content_type: str) -> Payload:
    """Freeze the bytes to send (encrypted at rest, with their sha256). They are never rebuilt or changed."""
    if not isinstance(content, bytes) or not content:
        raise ValueError("a payload is non-empty bytes")
    return Payload.objects.create(content=content, content_type=content_type)


def payloads_purge(*, payload_ids, now=None) -> int:
    """Retention: erase the content of these payloads (the hash, type and dates stay as evidence)."""
    return (Payload.objects.filter(pk__in=list(payload_ids), purged_at__isnull=True)
            .update(content=None, purged_at=now or timezone.now()))


def idempotency_key(*, stream: str, sequence: int, sha256: str) -> str:
    """One key per content: a replay can only ever repeat these exact bytes (HER-SYS answers the first time's
    receipt), and different bytes for the same revision can never hide behind an earlier answer."""
    return f"{stream}:{sequence}:{sha256[:16]}"


def delivery_create(*, payload: Payload, hospital, stream: str, sequence: int) -> Delivery:
    """Outbox row for a frozen payload; must run inside the transaction that produced it. The task is enqueued
    only after commit; if that enqueue is lost, the sweeper finds the row. Within `stream`, `sequence` orders
    the deliveries: one is not sent while a lower one is not final."""
    if payload.content is None or not payload.sha256:
        raise ValueError("only a payload with content can be delivered")
    delivery = Delivery.objects.create(
        payload=payload, hospital=hospital, stream=stream, sequence=sequence,
        idempotency_key=idempotency_key(stream=stream, sequence=sequence, sha256=payload.sha256),
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


def _claim(delivery_id: int) -> tuple[Delivery, Attempt, str | None] | None:
    """Take a lease on a delivery that is due. Returns None when it is final, leased elsewhere or not due, else the
    delivery, its new attempt and the payload's stored (still encrypted) content.

    One SELECT carries what deciding needs — the row (locked), whether an earlier sequence is pending, how many
    attempts were logged, the hospital's code and the payload's token — instead of one statement each (written as
    SQL: compiling the same query through the ORM cost more CPU than running it)."""
    now = timezone.now()
    with transaction.atomic():
        delivery = next(iter(Delivery.objects.raw(_claim_sql(), [delivery_id])), None)
        if delivery is None or delivery.status in (*Delivery.FINAL, Delivery.Status.DEAD, Delivery.Status.HELD):
            return None  # final, a dead letter, or held by people: never sent from here
        if delivery.status == Delivery.Status.SENDING and delivery.lease_until and delivery.lease_until > now:
            # Another worker holds the lease, or one died holding it (a redelivered task): look again when the
            # lease runs out instead of waiting for the sweeper.
            remaining = (delivery.lease_until - now).total_seconds()
            transaction.on_commit(lambda: delivery_enqueue(delivery_id, countdown=remaining + 1))
            return None
        if delivery.status == Delivery.Status.RETRYING and delivery.next_attempt_at > now:
            return None
        # "Nothing earlier pending" cannot go stale (final is final, earlier sequences are never added later), but
        # "pending" may have been read before the lock was granted: look again with a fresh statement.
        if delivery.earlier_pending and _earlier_sequence_pending(delivery):
            return None  # sent when the earlier one is accepted (see _record), or by the sweeper
        delivery_transition(delivery, Delivery.Status.SENDING, attempts=delivery.attempts + 1,
                            lease_until=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS))
        # Attempts are only created under this row's lock: the count keeps counting across re-drives.
        attempt = Attempt.objects.create(delivery=delivery, number=delivery.attempts_logged + 1,
                                         worker=_WORKER or _worker_name())
    return delivery, attempt, delivery.payload_token


@lru_cache(maxsize=1)
def _claim_sql() -> str:
    hospital = Delivery._meta.get_field("hospital").related_model  # delivery does not import accounts
    d, a, p, h = (m._meta.db_table for m in (Delivery, Attempt, Payload, hospital))
    final = ", ".join(f"'{s}'" for s in Delivery.FINAL)  # constants of the model, not input
    lock = " FOR UPDATE OF d" if connection.features.has_select_for_update_of else ""  # SQLite: IMMEDIATE txns
    return (f"SELECT d.*, h.code AS hospital_code, p.content AS payload_token, "
            f"EXISTS (SELECT 1 FROM {d} e WHERE e.stream = d.stream AND e.sequence < d.sequence "
            f"AND e.status NOT IN ({final})) AS earlier_pending, "
            f"(SELECT count(*) FROM {a} t WHERE t.delivery_id = d.id) AS attempts_logged "
            f"FROM {d} d JOIN {h} h ON h.id = d.hospital_id JOIN {p} p ON p.id = d.payload_id "
            f"WHERE d.id = %s{lock}")


_WORKER = ""


def _worker_name() -> str:
    global _WORKER
    _WORKER = f"{socket.gethostname()}:{os.getpid()}"
    return _WORKER


def _earlier_sequence_pending(delivery: Delivery) -> bool:
    """Deliveries of one stream reach HER-SYS in order: an update or withdrawal never overtakes the
    notification it changes (that would be refused, or leave HER-SYS and the portal disagreeing)."""
    return (Delivery.objects.filter(stream=delivery.stream, sequence__lt=delivery.sequence)
            .exclude(status__in=Delivery.FINAL).exists())


def _enqueue_next_in_stream(delivery: Delivery) -> None:
    with connection.cursor() as cursor:  # SQL: the hot path of every acceptance (see _claim_sql)
        cursor.execute(f"SELECT id FROM {Delivery._meta.db_table} WHERE stream = %s AND sequence > %s "
                       "AND status = %s ORDER BY sequence LIMIT 1",
                       [delivery.stream, delivery.sequence, Delivery.Status.QUEUED])
        found = cursor.fetchone()
    if found:
        following = found[0]
        transaction.on_commit(lambda: delivery_enqueue(following))


def delivery_attempt(delivery_id: int) -> Delivery | None:
    """One try: claim, send the frozen payload (outside any transaction), record the outcome. Safe to run twice:
    the bytes are the same every time and the idempotency key makes HER-SYS answer a replay with the original
    receipt."""
    from hersys_client import PermanentError, RetryableError, backoff_delay

    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    delivery, attempt, token = claimed
    try:
        body = Payload._meta.get_field("content").from_db_value(token, None, connection)  # decrypt
        if body is None:
            raise LookupError("the payload has no content (purged or never frozen)")
    except DatabaseError:
        raise  # the database, not the data: the task retries, the lease and the sweeper cover the rest
    except Exception as exc:  # erased, never frozen or undecryptable: retrying cannot help, a person must look
        log.exception("delivery %s: payload could not be read", delivery_id)
        return _record(delivery, attempt, Attempt.Outcome.PERMANENT,
                       f"送信データを読み出せませんでした（{type(exc).__name__}）。サポート窓口へ連絡してください。",
                       None, dead=True)
    try:
        receipt = hersys_client().submit_bytes(body, delivery.idempotency_key)
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
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        row = next(iter(Delivery.objects.raw(f"SELECT * FROM {Delivery._meta.db_table} WHERE id = %s{lock}",
                                             [delivery.pk])))
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Attempt._meta.db_table} SET outcome = %s, message = %s, http_status = %s, "
                           "finished_at = %s WHERE id = %s",
                           [outcome, message[:2000], http_status, connection.ops.adapt_datetimefield_value(now),
                            attempt.pk])
        if row.status != Delivery.Status.SENDING:
            return row  # someone else finished it meanwhile (e.g. a sweeper-driven replay)
        if outcome == Attempt.Outcome.ACCEPTED:
            delivery_transition(row, Delivery.Status.ACCEPTED, receipt_id=receipt.receipt_id,
                                report_date=receipt.report_date, last_error="", lease_until=None)
            _enqueue_next_in_stream(row)
        elif dead:
            delivery_transition(row, Delivery.Status.DEAD, last_error=message, lease_until=None)
        elif outcome == Attempt.Outcome.PERMANENT:
            delivery_transition(row, Delivery.Status.REJECTED, last_error=message, lease_until=None)
        elif _budget_spent(row, now):
            delivery_transition(row, Delivery.Status.DEAD, last_error=message, lease_until=None)
        else:
            delivery_transition(row, Delivery.Status.RETRYING, last_error=message, lease_until=None,
                                next_attempt_at=now + timedelta(seconds=delay or 0))
    audit_record(OUTCOME_ACTIONS[outcome], hospital_code=delivery.hospital_code, obj=row, attempt=attempt.number,
                 http_status=http_status, status=row.status)
    if row.status in (Delivery.Status.REJECTED, Delivery.Status.DEAD):
        _problem_announce(row)
    if row.status == Delivery.Status.RETRYING:
        delivery_enqueue(row.pk, countdown=delay)
    return row


def _problem_announce(delivery: Delivery) -> None:
    """Tell listeners (signals.delivery_problem) that people must act; a listener's failure never undoes or
    repeats the delivery's outcome (it is committed already)."""
    from .signals import delivery_problem

    for receiver, result in delivery_problem.send_robust(sender=Delivery, delivery_id=delivery.pk,
                                                         hospital_id=delivery.hospital_id, problem=delivery.status):
        if isinstance(result, Exception):
            log.error("delivery %s: problem listener %r failed: %r", delivery.pk, receiver, result)


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


class HoldRefused(Exception):
    """The delivery cannot be held now (already sent, in flight or final); the message is for people."""


def delivery_hold(delivery_id: int) -> Delivery:
    """Hold a delivery that has not reached HER-SYS (queued, retrying, dead letter): the worker never sends it
    until `delivery_release`. Call inside the caller's transaction (the caller audits its own act)."""
    row = Delivery.objects.select_for_update().get(pk=delivery_id)
    if row.status == Delivery.Status.HELD:
        return row
    if row.status == Delivery.Status.SENDING:
        raise HoldRefused("いまHER-SYSへ送信中のため保留できません。少し待ってから送信状況を確認してください。")
    if row.status not in ALLOWED or Delivery.Status.HELD not in ALLOWED[row.status]:
        raise HoldRefused("この版はすでに送信が終わっているため保留できません。")
    return delivery_transition(row, Delivery.Status.HELD, lease_until=None)


def delivery_release(delivery_id: int) -> Delivery:
    """Send a held delivery after all (queued again, enqueued after commit, with a fresh retry window)."""
    row = Delivery.objects.select_for_update().get(pk=delivery_id)
    delivery_transition(row, Delivery.Status.QUEUED, next_attempt_at=timezone.now(), redriven_at=timezone.now())
    transaction.on_commit(lambda: delivery_enqueue(row.pk))
    return row


def delivery_withhold(delivery_id: int) -> Delivery:
    """A held delivery is never sent (final): e.g. the notification was completed by FAX only."""
    row = Delivery.objects.select_for_update().get(pk=delivery_id)
    delivery_transition(row, Delivery.Status.WITHHELD)
    row_final = row
    _enqueue_next_in_stream(row_final)  # a later revision of the stream no longer waits for this one
    return row_final


def delivery_redrive(delivery: Delivery, user, request=None) -> Delivery:
    """Central admin re-drives a dead letter after fixing the cause."""
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        delivery_transition(row, Delivery.Status.QUEUED, attempts=0, next_attempt_at=timezone.now(),
                            redriven_at=timezone.now())
        audit_record("delivery.redrive", request=request, user=user, obj=row)
        transaction.on_commit(lambda: delivery_enqueue(row.pk))
    return row
