"""Delivery to HER-SYS. `delivery_transition` is the one place that changes a delivery's status.

A generic outbox: it sends a frozen `Payload` (bytes built by the caller) under an idempotency key that covers the
bytes' hash, keeps revisions of one stream in order, and writes only its own rows (never the caller's).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone

from assist_portal.audit.events import AuditAction
from assist_portal.audit.services import audit_event, audit_record
from assist_portal.sqlcache import ModelRows, insert_from

from .models import Attempt, Delivery, Payload

log = logging.getLogger(__name__)

ALLOWED = {
    # → accepted without a send: HER-SYS, asked, already holds exactly this revision (reconciliation).
    # → held: recorded as sent by FAX; electronic delivery waits for a person's decision (never sent while held).
    Delivery.Status.QUEUED: {Delivery.Status.SENDING, Delivery.Status.ACCEPTED, Delivery.Status.HELD},
    Delivery.Status.RETRYING: {Delivery.Status.SENDING, Delivery.Status.ACCEPTED, Delivery.Status.HELD},
    Delivery.Status.SENDING: {Delivery.Status.ACCEPTED, Delivery.Status.REJECTED, Delivery.Status.RETRYING,
                              Delivery.Status.DEAD, Delivery.Status.SENDING},
    Delivery.Status.DEAD: {Delivery.Status.QUEUED, Delivery.Status.ACCEPTED, Delivery.Status.HELD},
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
    Attempt.Outcome.RECONCILED: AuditAction.DELIVERY_RECONCILED,
}

ABANDONED_MESSAGE = ("送信中にワーカーが停止したか応答がなくなりました（HER-SYSに届いたかは不明）。"
                     "同じ識別キーで再送するため、二重に登録されることはありません。")
RECONCILED_MESSAGE = "HER-SYSに照会し、この版が同じ内容で登録済みであることを確認しました（受付番号 {receipt}）。"


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
    from assist_portal import broker

    from .tasks import deliver

    try:
        broker.task_publish(deliver, [delivery_id], countdown=countdown)
    except Exception:  # broker down: the sweeper will pick the row up
        log.warning("could not enqueue delivery %s; the sweeper will retry", delivery_id, exc_info=True)


def hersys_client():
    """One client per worker process, shared by its threads: built once, under a lock (a cache alone would let
    every thread of a busy worker's start build one of its own and throw the others away). Production puts the CA
    and the worker's client certificate and key at HERSYS_PKI_DIR/{ca.pem, client.pem, client-key.pem}; only when
    they are absent and we talk to the local sandbox (demo, tests) is a development PKI generated there. Real
    certificates are never touched."""
    with _CLIENT_LOCK:
        return _hersys_client_build()


_CLIENT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _hersys_client_build():
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


hersys_client.cache_clear = _hersys_client_build.cache_clear  # tests: a client for changed settings


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
    if connection.vendor == "postgresql":
        claimed = _claim_at_once(delivery_id, now)
        if claimed is not None:
            return claimed
    with transaction.atomic():
        delivery = _DELIVERY_ROWS.first(_claim_sql(), [delivery_id], _CLAIM_EXTRAS)
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
        if delivery.status == Delivery.Status.SENDING:  # the lease ran out: the previous attempt died
            _attempts_abandon(Attempt.objects.filter(delivery_id=delivery.pk), now)
        delivery_transition(delivery, Delivery.Status.SENDING, attempts=delivery.attempts + 1,
                            lease_until=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS))
        # Attempts are only created under this row's lock: the count keeps counting across re-drives.
        attempt = Attempt.objects.create(delivery=delivery, number=delivery.attempts_logged + 1,
                                         worker=_WORKER or _worker_name())
    return delivery, attempt, delivery.payload_token


_DELIVERY_ROWS = ModelRows(Delivery)
_CLAIM_EXTRAS = ("hospital_code", "payload_token", "payload_sha256", "earlier_pending", "attempts_logged")


# -- the common case in one statement each (PostgreSQL; issue 13) ----------------------------------------------------
#
# A delivery that is simply due (queued, or retrying and its time has come, nothing earlier in its stream pending)
# is claimed, and a claimed one that HER-SYS accepted is recorded, each by one data-modifying WITH statement in
# autocommit: the row lock, the status check and every write in one round trip instead of a transaction of five to
# seven (the worker's and PostgreSQL's CPU per notification is mostly per statement). They make exactly the
# transitions `delivery_transition` allows (queued/retrying → sending, sending → accepted; checked by a test) and
# write the same rows as the general path. Whatever they do not match — a lease held or run out, an earlier
# revision pending, a delivery finished meanwhile, another outcome — goes through the general path, which looks
# again under the row lock. The UPDATE's condition is evaluated again on the newest row version after a lock
# wait; the attempt count comes from the statement's snapshot, which cannot miss an attempt: attempts are only
# added with the row moved to `sending`, and a row found `sending` is not matched here.

def _claim_at_once(delivery_id: int, now) -> tuple[Delivery, Attempt, str | None] | None:
    d, a = Delivery._meta.db_table, Attempt._meta.db_table
    attempt = Attempt(number=0, worker=_WORKER or _worker_name(), started_at=now)
    insert, insert_params = insert_from(attempt, "d", {
        "delivery_id": "d.id", "number": f"(SELECT count(*) FROM {a} t WHERE t.delivery_id = d.id) + 1"})
    hospital = Delivery._meta.get_field("hospital").related_model
    sql = (f"WITH d AS (UPDATE {d} u SET status = %s, attempts = u.attempts + 1, lease_until = %s, updated_at = %s "
           f"WHERE u.id = %s AND (u.status = %s OR (u.status = %s AND u.next_attempt_at <= %s)) "
           f"AND NOT {_earlier_pending_sql('u')} RETURNING u.*), "
           f"n AS ({insert} RETURNING id, number) "
           f"SELECT {_DELIVERY_ROWS.columns('d')}, h.code AS hospital_code, p.content AS payload_token, "
           f"n.id AS attempt_id, n.number AS attempt_number "
           f"FROM d JOIN {hospital._meta.db_table} h ON h.id = d.hospital_id "
           f"JOIN {Payload._meta.db_table} p ON p.id = d.payload_id CROSS JOIN n")
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    at = connection.ops.adapt_datetimefield_value
    params = [Delivery.Status.SENDING, at(lease), at(now), delivery_id, Delivery.Status.QUEUED,
              Delivery.Status.RETRYING, at(now), *insert_params]
    with transaction.mark_for_rollback_on_error():
        delivery = _DELIVERY_ROWS.first(sql, params, _CLAIMED_EXTRAS)
    if delivery is None:
        return None
    attempt.pk, attempt.number, attempt.delivery = delivery.attempt_id, delivery.attempt_number, delivery
    attempt._state.adding, attempt._state.db = False, delivery._state.db
    return delivery, attempt, delivery.payload_token


_CLAIMED_EXTRAS = ("hospital_code", "payload_token", "attempt_id", "attempt_number")


def _record_accepted_at_once(delivery: Delivery, attempt: Attempt, outcome: str, message: str,
                             http_status: int | None, receipt, now) -> Delivery | None:
    """The attempt's outcome, the delivery accepted and its audit row in one statement; the row as written, or
    None when the delivery was no longer `sending` (the general path then reads it as it is)."""
    d, a = Delivery._meta.db_table, Attempt._meta.db_table
    event = audit_event(OUTCOME_ACTIONS[outcome], hospital_code=delivery.hospital_code, obj=delivery,
                        attempt=attempt.number, http_status=http_status, status=Delivery.Status.ACCEPTED)
    audit, audit_params = insert_from(event, "d")
    sql = (f"WITH a AS (UPDATE {a} SET outcome = %s, message = %s, http_status = %s, finished_at = %s WHERE id = %s), "
           f"d AS (UPDATE {d} SET status = %s, receipt_id = %s, report_date = %s, last_error = '', "
           f"lease_until = NULL, updated_at = %s WHERE id = %s AND status = %s RETURNING *), "
           f"e AS ({audit}) "
           f"SELECT {_DELIVERY_ROWS.columns('d')}, (SELECT f.id FROM {d} f WHERE f.stream = d.stream "
           f"AND f.sequence > d.sequence AND f.status = %s ORDER BY f.sequence LIMIT 1) AS following FROM d")
    at = connection.ops.adapt_datetimefield_value
    field = Delivery._meta.get_field
    params = [outcome, message[:2000], http_status, at(now), attempt.pk,
              Delivery.Status.ACCEPTED,
              field("receipt_id").get_db_prep_save(receipt.receipt_id, connection),
              field("report_date").get_db_prep_save(receipt.report_date, connection),
              at(now), delivery.pk, Delivery.Status.SENDING, *audit_params, Delivery.Status.QUEUED]
    with transaction.mark_for_rollback_on_error():
        row = _DELIVERY_ROWS.first(sql, params, ("following",))
    if row is None:
        return None
    if row.following is not None:
        following = row.following
        transaction.on_commit(lambda: delivery_enqueue(following))
    return row


@lru_cache(maxsize=1)
def _claim_sql() -> str:
    hospital = Delivery._meta.get_field("hospital").related_model  # delivery does not import accounts
    d, a, p, h = (m._meta.db_table for m in (Delivery, Attempt, Payload, hospital))
    lock = " FOR UPDATE OF d" if connection.features.has_select_for_update_of else ""  # SQLite: IMMEDIATE txns
    return (f"SELECT {_DELIVERY_ROWS.columns('d')}, h.code AS hospital_code, p.content AS payload_token, "
            f"p.sha256 AS payload_sha256, "
            f"{_earlier_pending_sql('d')} AS earlier_pending, "
            f"(SELECT count(*) FROM {a} t WHERE t.delivery_id = d.id) AS attempts_logged "
            f"FROM {d} d JOIN {h} h ON h.id = d.hospital_id JOIN {p} p ON p.id = d.payload_id "
            f"WHERE d.id = %s{lock}")


def _earlier_pending_sql(alias: str) -> str:
    """SQL: a revision of the stream of delivery `alias` with a lower sequence is not final yet (both claims)."""
    final = ", ".join(f"'{s}'" for s in Delivery.FINAL)  # constants of the model, not input
    return (f"EXISTS (SELECT 1 FROM {Delivery._meta.db_table} e WHERE e.stream = {alias}.stream "
            f"AND e.sequence < {alias}.sequence AND e.status NOT IN ({final}))")


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


def _attempts_abandon(attempts, now) -> int:
    """Close attempts still `started` whose worker is gone (its lease ran out) as `abandoned`."""
    return attempts.filter(outcome=Attempt.Outcome.STARTED).update(
        outcome=Attempt.Outcome.ABANDONED, finished_at=now, message=ABANDONED_MESSAGE)


def _hersys_holding(delivery: Delivery):
    """Ask HER-SYS what it holds for this delivery's stream (the notification's Bundle.identifier). Returns
    (check, holding): check is Delivery.Check.HELD when HER-SYS holds this very revision with this content, OTHER
    when it holds this revision number or a later one with other content, ABSENT when it holds neither, UNREACHABLE
    when it could not be asked. Never raises for HER-SYS trouble (it is a second opinion, not a send)."""
    from hersys_client import HersysError

    try:
        holding = hersys_client().lookup(delivery.stream)
    except (HersysError, ValueError):
        log.info("delivery %s: HER-SYS could not be asked what it holds", delivery.pk, exc_info=True)
        return Delivery.Check.UNREACHABLE, None
    if holding is None:
        return Delivery.Check.ABSENT, None
    held = holding.held(delivery.sequence)
    sha256 = _payload_sha256(delivery)
    # The content decides (a legacy key `<uuid>:<revision>` may have carried other bytes); the key only when
    # HER-SYS reports no hash.
    same = (held.sha256 == sha256) if held is not None and held.sha256 and sha256 else (
        held is not None and held.idempotency_key == delivery.idempotency_key)
    if same:
        return Delivery.Check.HELD, holding
    if held is not None or holding.revision >= delivery.sequence:
        return Delivery.Check.OTHER, holding
    return Delivery.Check.ABSENT, holding


def _payload_sha256(delivery: Delivery) -> str:
    sha = getattr(delivery, "payload_sha256", None)
    if sha is None:
        sha = Payload.objects.filter(pk=delivery.payload_id).values_list("sha256", flat=True).first() or ""
    return sha


def other_content_message(holding, sequence: int) -> str:
    """What a person is told when HER-SYS holds this revision number (or a later one) with other content."""
    return (f"HER-SYSには、この届出の第{holding.revision}版までが別の内容で登録済みです（受付番号 {holding.receipt_id}）。"
            f"この第{sequence}版の内容はHER-SYSに届いていません。古い内容のまま受理扱いにはしていません。"
            "届出を開いて内容を確認し、もう一度確定してください（修正として送信されます）。"
            "バックアップからの復元後であれば、運用担当が照合（manage.py reconcile）を行います。")


def delivery_attempt(delivery_id: int) -> Delivery | None:
    """One try: claim, send the frozen payload (outside any transaction), record the outcome. Safe to run twice:
    the bytes are the same every time and the idempotency key makes HER-SYS answer a replay with the original
    receipt. Before giving up (a dead letter), and when HER-SYS answers that it holds this revision with other
    content (409), HER-SYS is asked what it holds: a revision it already has ends accepted with its receipt; one
    it has with other content is stopped and shown to people, never replayed as the old values."""
    from hersys_client import IdempotencyKeyReused, PermanentError, RetryableError, RevisionConflict, backoff_delay

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
        check, holding = _hersys_holding(delivery)  # a dead-letter candidate: does HER-SYS have it already?
        if check == Delivery.Check.HELD:
            return _record(delivery, attempt, Attempt.Outcome.RECONCILED,
                           RECONCILED_MESSAGE.format(receipt=holding.receipt_id), None,
                           receipt=holding.receipt(delivery.sequence), check=(check, holding))
        return _record(delivery, attempt, Attempt.Outcome.PERMANENT,
                       f"送信データを読み出せませんでした（{type(exc).__name__}）。サポート窓口へ連絡してください。",
                       None, dead=True, check=(check, holding))
    try:
        receipt = hersys_client().submit_bytes(body, delivery.idempotency_key)
    except RetryableError as exc:
        delay = backoff_delay(delivery.attempts, retry_after=exc.retry_after, base=settings.DELIVERY_BACKOFF_BASE,
                              cap=settings.DELIVERY_BACKOFF_CAP)
        check = None
        now = timezone.now()
        if _budget_spent(delivery, now) or (_delayed(delivery, now) and delivery.hersys_checked_at is None):
            # About to become a dead letter, or late enough that people are offered the fax: ask HER-SYS first.
            check = _hersys_holding(delivery)
            if check[0] == Delivery.Check.HELD:
                return _record(delivery, attempt, Attempt.Outcome.RECONCILED,
                               RECONCILED_MESSAGE.format(receipt=check[1].receipt_id), None,
                               receipt=check[1].receipt(delivery.sequence), check=check)
        return _record(delivery, attempt, Attempt.Outcome.RETRYABLE, str(exc), getattr(exc, "status", None), delay,
                       check=check)
    except (RevisionConflict, IdempotencyKeyReused) as exc:
        # HER-SYS has this revision number (or this key) with other content, or is ahead: find out what it holds.
        check, holding = _hersys_holding(delivery)
        if check == Delivery.Check.HELD:  # ours after all (e.g. first sent under an older key format)
            return _record(delivery, attempt, Attempt.Outcome.RECONCILED,
                           RECONCILED_MESSAGE.format(receipt=holding.receipt_id), exc.status,
                           receipt=holding.receipt(delivery.sequence), check=(check, holding))
        message = exc.message_ja
        if holding is not None:
            message = other_content_message(holding, delivery.sequence)
        return _record(delivery, attempt, Attempt.Outcome.PERMANENT, message, exc.status, check=(check, holding))
    except PermanentError as exc:
        return _record(delivery, attempt, Attempt.Outcome.PERMANENT, str(exc), getattr(exc, "status", None))
    except Exception as exc:  # unexpected: retried within the window, then a dead letter for people
        log.exception("delivery %s failed unexpectedly", delivery_id)
        return _record(delivery, attempt, Attempt.Outcome.RETRYABLE, f"内部エラー: {type(exc).__name__}", None,
                       backoff_delay(delivery.attempts, base=settings.DELIVERY_BACKOFF_BASE,
                                     cap=settings.DELIVERY_BACKOFF_CAP))
    return _record(delivery, attempt, Attempt.Outcome.ACCEPTED, "受理されました", 200, receipt=receipt)


def _delayed(delivery: Delivery, now) -> bool:
    """Pending long enough that people are told it is late and offered the fax (DELIVERY_DELAYED_SECONDS)."""
    started = delivery.redriven_at or delivery.created_at
    return (now - started).total_seconds() >= settings.DELIVERY_DELAYED_SECONDS


def _check_fields(check, now) -> dict:
    if check is None:
        return {}
    result, holding = check
    fields = {"hersys_checked_at": now, "hersys_check": result}
    if holding is not None:
        fields["hersys_revision"] = holding.revision
    return fields


def _record(delivery: Delivery, attempt: Attempt, outcome: str, message: str, http_status: int | None,
            delay: float | None = None, receipt=None, dead: bool = False, check=None) -> Delivery:
    now = timezone.now()
    checked = _check_fields(check, now)
    if outcome == Attempt.Outcome.ACCEPTED and not checked and not dead and connection.vendor == "postgresql":
        row = _record_accepted_at_once(delivery, attempt, outcome, message, http_status, receipt, now)
        if row is not None:
            return row
    with transaction.atomic():
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        row = _DELIVERY_ROWS.first(f"SELECT {_DELIVERY_ROWS.columns('d')} FROM {Delivery._meta.db_table} d "
                                   f"WHERE d.id = %s{lock}", [delivery.pk])
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Attempt._meta.db_table} SET outcome = %s, message = %s, http_status = %s, "
                           "finished_at = %s WHERE id = %s",
                           [outcome, message[:2000], http_status, connection.ops.adapt_datetimefield_value(now),
                            attempt.pk])
        if row.status != Delivery.Status.SENDING:
            return row  # someone else finished it meanwhile (e.g. a sweeper-driven replay)
        if outcome in (Attempt.Outcome.ACCEPTED, Attempt.Outcome.RECONCILED):
            delivery_transition(row, Delivery.Status.ACCEPTED, receipt_id=receipt.receipt_id,
                                report_date=receipt.report_date, last_error="", lease_until=None, **checked)
            _enqueue_next_in_stream(row)
        elif dead:
            delivery_transition(row, Delivery.Status.DEAD, last_error=message, lease_until=None, **checked)
        elif outcome == Attempt.Outcome.PERMANENT:
            delivery_transition(row, Delivery.Status.REJECTED, last_error=message, lease_until=None, **checked)
        elif _budget_spent(row, now):
            delivery_transition(row, Delivery.Status.DEAD, last_error=_dead_message(message, checked),
                                lease_until=None, **checked)
        else:
            delivery_transition(row, Delivery.Status.RETRYING, last_error=message, lease_until=None,
                                next_attempt_at=now + timedelta(seconds=delay or 0), **checked)
        # In the outcome's own transaction: one commit per outcome, and never an outcome without its audit row.
        audit_record(OUTCOME_ACTIONS[outcome], hospital_code=delivery.hospital_code, obj=row,
                     attempt=attempt.number, http_status=http_status, status=row.status)
    if row.status in (Delivery.Status.REJECTED, Delivery.Status.DEAD):
        _problem_announce(row)
    if row.status == Delivery.Status.RETRYING:
        delivery_enqueue(row.pk, countdown=delay)
    return row


def _dead_message(message: str, checked: dict) -> str:
    """A dead letter never keeps a "will retry" message: it says what HER-SYS answered and that retries stopped."""
    found = {Delivery.Check.ABSENT: "HER-SYSに照会し、この版が登録されていないことを確認しました。",
             Delivery.Check.UNREACHABLE: "HER-SYSに照会できず、届いているかは確認できていません。",
             Delivery.Check.OTHER: "HER-SYSには、この版の番号で別の内容が登録されています。"}.get(
        checked.get("hersys_check"), "")
    reason = message.replace("時間をおいて再送します。", "").strip()
    return f"自動再送を終了しました（最後の応答: {reason}）。{found}"
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
    """Re-enqueue deliveries whose task was lost: queued/retrying and due, or sending with an expired lease (whose
    open attempts are closed as `abandoned`: their worker is gone). Deliveries late enough that people are offered
    the fax get HER-SYS asked once whether it already holds them (`delivery_check`)."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.DELIVERY_SWEEP_GRACE_SECONDS)  # their own task is probably on its way
    stale = list(Delivery.objects.filter(status=Delivery.Status.SENDING, lease_until__lt=now)
                 .values_list("pk", flat=True)[:500])
    if stale:
        _attempts_abandon(Attempt.objects.filter(delivery_id__in=stale, delivery__status=Delivery.Status.SENDING,
                                                 delivery__lease_until__lt=now), now)
    due = list(
        Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.RETRYING],
                                next_attempt_at__lte=grace).values_list("pk", flat=True)[:500]
    ) + stale
    for pk in due:
        delivery_enqueue(pk)
    late = now - timedelta(seconds=settings.DELIVERY_DELAYED_SECONDS)
    unchecked = (Delivery.objects.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.RETRYING],
                                         hersys_checked_at__isnull=True)
                 .filter(models.Q(redriven_at__isnull=True, created_at__lte=late) | models.Q(redriven_at__lte=late))
                 .exclude(pk__in=due).values_list("pk", flat=True)[:200])
    for pk in unchecked:
        delivery_check_enqueue(pk)
    return len(due)


def delivery_check_enqueue(delivery_id: int) -> None:
    from .tasks import check_delivery

    try:
        check_delivery.apply_async(args=[delivery_id], expires=600)
    except Exception:
        log.warning("could not enqueue the HER-SYS check of delivery %s", delivery_id, exc_info=True)


def delivery_check(delivery_id: int, now=None) -> Delivery | None:
    """Ask HER-SYS whether it already holds a pending (or dead) delivery's revision, without sending anything:
    held with this content → accepted with its receipt (a `reconciled` attempt); otherwise the answer is noted
    (`hersys_check`), and the delivery goes on as before. Runs on the VPN side (it talks to HER-SYS)."""
    row = Delivery.objects.filter(pk=delivery_id).first()
    if row is None or row.status not in (Delivery.Status.QUEUED, Delivery.Status.RETRYING, Delivery.Status.DEAD):
        return row
    check, holding = _hersys_holding(row)
    now = now or timezone.now()
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery_id)
        if row.status not in (Delivery.Status.QUEUED, Delivery.Status.RETRYING, Delivery.Status.DEAD):
            return row  # a worker took it meanwhile: its own answer counts
        fields = _check_fields((check, holding), now)
        if check != Delivery.Check.HELD:
            for key, value in fields.items():
                setattr(row, key, value)
            row.save(update_fields=list(fields))
            return row
        attempt = Attempt.objects.create(
            delivery=row, number=Attempt.objects.filter(delivery=row).count() + 1, outcome=Attempt.Outcome.RECONCILED,
            finished_at=now, worker=_WORKER or _worker_name(),
            message=RECONCILED_MESSAGE.format(receipt=holding.receipt_id))
        receipt = holding.receipt(row.sequence)
        delivery_transition(row, Delivery.Status.ACCEPTED, receipt_id=receipt.receipt_id,
                            report_date=receipt.report_date, last_error="", lease_until=None, **fields)
        _enqueue_next_in_stream(row)
        audit_record(AuditAction.DELIVERY_RECONCILED, hospital_code=row.hospital.code, obj=row,
                     attempt=attempt.number, http_status=None, status=row.status)  # with the outcome (see _record)
    return row


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


def delivery_stuck(delivery: Delivery, now=None) -> bool:
    """A pending delivery nobody is working on: sending with its lease run out (the worker died), or due for longer
    than the sweeper needs to notice (its task was lost and the sweeper is not running)."""
    now = now or timezone.now()
    if delivery.status == Delivery.Status.SENDING:
        return delivery.lease_until is not None and delivery.lease_until < now
    if delivery.status in (Delivery.Status.QUEUED, Delivery.Status.RETRYING):
        return (now - delivery.next_attempt_at).total_seconds() > sweep_horizon_seconds()
    return False


def sweep_horizon_seconds() -> float:
    """How long a due delivery may wait before the sweeper has surely re-enqueued it (one period plus the grace)."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get("sweep-deliveries", {}).get("schedule", 30)
    return float(schedule) + settings.DELIVERY_SWEEP_GRACE_SECONDS


def delivery_resume(delivery: Delivery, user, request=None) -> bool:
    """A central admin's action on a stuck or waiting delivery: send it now. A dead worker's attempt is closed as
    abandoned; a retry waiting for its backoff is made due now. Safe whatever happens meanwhile (the claim decides,
    under its lease, and the idempotency key covers a send that did reach HER-SYS). False if it is not pending."""
    now = timezone.now()
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if row.status not in (Delivery.Status.QUEUED, Delivery.Status.RETRYING, Delivery.Status.SENDING):
            return False
        if row.status == Delivery.Status.SENDING:
            if row.lease_until is not None and row.lease_until > now:
                return False  # a live attempt: leave it alone
            _attempts_abandon(Attempt.objects.filter(delivery=row), now)
        elif row.next_attempt_at > now:
            row.next_attempt_at = now
            row.save(update_fields=["next_attempt_at"])
        audit_record(AuditAction.DELIVERY_RESUME, request=request, user=user, obj=row, status=row.status)
        transaction.on_commit(lambda: delivery_enqueue(row.pk))
    return True


def delivery_record_held(*, payload: Payload, hospital, stream: str, sequence: int, receipt) -> Delivery:
    """Reconciliation: an outbox row, already accepted, for a revision HER-SYS holds but the portal had forgotten
    (a restore from backup). `payload` holds the bytes HER-SYS stored; nothing is sent. Call inside the caller's
    transaction."""
    now = timezone.now()
    delivery = Delivery.objects.create(
        payload=payload, hospital=hospital, stream=stream, sequence=sequence,
        idempotency_key=idempotency_key(stream=stream, sequence=sequence, sha256=payload.sha256),
        status=Delivery.Status.ACCEPTED, receipt_id=receipt.receipt_id, report_date=receipt.report_date,
        hersys_checked_at=now, hersys_check=Delivery.Check.HELD, hersys_revision=receipt.revision, updated_at=now)
    Attempt.objects.create(delivery=delivery, number=1, outcome=Attempt.Outcome.RECONCILED, finished_at=now,
                           worker=_WORKER or _worker_name(),
                           message=RECONCILED_MESSAGE.format(receipt=receipt.receipt_id))
    audit_record(AuditAction.DELIVERY_RECONCILED, hospital_code=hospital.code, obj=delivery, attempt=1,
                 status=delivery.status)
    return delivery
