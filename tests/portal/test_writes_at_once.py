"""`sqlcache.writes_at_once`: the compiled writes of a block sent as one statement on PostgreSQL (issue 13,
ADR 0023) — the same rows as written one by one, keys of rows written together, every other statement sees what
was written before it, failures raise and spoil the transaction as the ORM's do; a confirmation is one statement."""
import pytest
from django.db import DatabaseError, DataError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from assist_portal.audit.models import AuditEvent
from assist_portal.audit.services import audit_event
from assist_portal.delivery.models import Delivery, Payload
from assist_portal.notifications.models import NotificationRevision
from assist_portal.sqlcache import writes_at_once
from tests.portal.conftest import confirm_demo_patient

pytestmark = pytest.mark.django_db

needs_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                      reason="data-modifying WITH statements: PostgreSQL (elsewhere a no-op)")


def _stored(model, pk, *leave_out):
    row = model.objects.filter(pk=pk).values().get()
    for name in ("id", *leave_out):
        row.pop(name)
    return row


def _rows(hospital, tag: str):
    """A payload, its outbox row (referring to it) and an audit row, not yet saved."""
    payload = Payload(content=b'{"resourceType": "Bundle", "id": "' + tag.encode() + b'"}',
                      content_type="application/fhir+json")
    return payload, audit_event("notification.view", hospital_code=hospital.code, object_type="x", object_id=tag,
                                note="二")


def _write(hospital, tag: str, earlier: Delivery):
    """A payload, its outbox row and an audit row inserted, an earlier outbox row updated."""
    payload, event = _rows(hospital, tag)
    payload.save()
    delivery = Delivery.objects.create(payload=payload, hospital=hospital, stream=tag, sequence=1,
                                       idempotency_key=f"{tag}:1")
    event.save()
    earlier.last_error = f"after {tag}"
    earlier.save(update_fields=["last_error"])
    return payload, delivery, event


@needs_postgresql
def test_the_writes_of_a_block_are_one_statement_and_store_what_single_writes_store(hospital):
    earlier = Delivery.objects.create(payload=Payload.objects.create(content=b"x", content_type="text/plain"),
                                      hospital=hospital, stream="earlier", sequence=1, idempotency_key="earlier")
    with transaction.atomic():
        one = _write(hospital, "single", earlier)
    assert Delivery.objects.get(pk=earlier.pk).last_error == "after single"
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with writes_at_once():
            payload, delivery, event = _write(hospital, "batch", earlier)
            assert payload.pk is None and delivery.pk is None  # keys come when the batch is written
        assert len(queries.captured_queries) == 1, [q["sql"][:80] for q in queries.captured_queries]
    assert queries.captured_queries[0]["sql"].startswith("WITH ")
    assert Delivery.objects.get(pk=earlier.pk).last_error == "after batch"
    assert payload.pk and delivery.pk and event.pk and not delivery._state.adding
    assert delivery.payload_id == payload.pk and delivery.payload is payload
    single, batch = dict(zip(("payload", "delivery", "event"), one, strict=True)), {
        "payload": payload, "delivery": delivery, "event": event}
    p1, p2 = (_stored(Payload, x["payload"].pk, "created_at", "content", "sha256") for x in (single, batch))
    assert p1 == p2 and Payload.objects.get(pk=payload.pk).content == payload.content
    assert Payload.objects.get(pk=payload.pk).sha256 == payload.sha256 and len(payload.sha256) == 64
    d1, d2 = (_stored(Delivery, x["delivery"].pk, "created_at", "updated_at", "next_attempt_at", "payload_id",
                      "stream", "idempotency_key") for x in (single, batch))
    assert d1 == d2 and d2["status"] == "queued"
    assert Delivery.objects.get(pk=delivery.pk).payload_id == payload.pk
    e1, e2 = (_stored(AuditEvent, x["event"].pk, "at", "object_id") for x in (single, batch))
    assert e1 == e2 and e2["detail"] == {"note": "二"}


@needs_postgresql
def test_any_other_statement_in_the_block_sees_what_was_written_before_it(hospital):
    with transaction.atomic(), writes_at_once():
        payload, _ = _rows(hospital, "read")
        payload.save()
        assert Payload.objects.filter(content_type="application/fhir+json").count() == 1  # written first
        assert payload.pk is not None
        with transaction.atomic():  # a savepoint is a statement too
            Delivery.objects.create(payload=payload, hospital=hospital, stream="read", sequence=1,
                                    idempotency_key="read:1")
        assert Delivery.objects.filter(payload=payload).exists()


@needs_postgresql
def test_a_row_refers_only_to_rows_of_its_own_batch_and_an_unsaved_other_is_refused(hospital):
    with pytest.raises(ValueError, match="unsaved related object"), transaction.atomic(), writes_at_once():
        Delivery(payload=Payload(content=b"x", content_type="text/plain"), hospital=hospital, stream="s",
                 sequence=1, idempotency_key="k").save()
    assert Delivery.objects.count() == Payload.objects.count() == 0


@needs_postgresql
def test_a_failing_write_raises_when_the_batch_is_written_and_spoils_the_transaction(hospital):
    """Too long for its column: refused (never cut), nothing of the batch written; carrying on in the same
    transaction after catching the error is refused as with the ORM."""
    with pytest.raises(DataError), transaction.atomic(), writes_at_once():
        payload = Payload.objects.create(content=b"x", content_type="text/plain")
        Delivery.objects.create(payload=payload, hospital=hospital, stream="s" * 200, sequence=1,
                                idempotency_key="k")
    assert Payload.objects.count() == Delivery.objects.count() == 0
    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            with writes_at_once():
                Payload.objects.create(content=b"x", content_type="t" * 101)
        except DataError:
            pass
        Payload.objects.count()
    assert Payload.objects.count() == 0


@needs_postgresql
def test_a_row_changed_twice_in_a_block_ends_as_the_second_change_left_it(hospital):
    """PostgreSQL applies only one of two changes of the same row in one statement: the batch is written in two."""
    payload = Payload.objects.create(content=b"x", content_type="text/plain")
    delivery = Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=1,
                                       idempotency_key="k")
    again = Delivery.objects.get(pk=delivery.pk)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries, writes_at_once():
        delivery.last_error = "first"
        delivery.save(update_fields=["last_error"])
        again.status = "sending"
        again.last_error = "second"
        again.save(update_fields=["status", "last_error"])
    assert len(queries.captured_queries) == 2
    stored = Delivery.objects.get(pk=delivery.pk)
    assert (stored.status, stored.last_error) == ("sending", "second")


@needs_postgresql
def test_an_update_of_a_row_that_is_gone_raises_as_djangos_save_does(hospital):
    payload = Payload.objects.create(content=b"x", content_type="text/plain")
    delivery = Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=1,
                                       idempotency_key="k")
    Delivery.objects.filter(pk=delivery.pk).delete()
    delivery.status = "sending"
    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic(), writes_at_once():
        delivery.save(update_fields=["status"])
    with pytest.raises(TransactionManagementError), transaction.atomic():  # and it spoils the transaction
        try:
            with writes_at_once():
                kept = Payload.objects.create(content=b"y", content_type="text/plain")
                delivery.save(update_fields=["status"])
        except DatabaseError:
            pass
        assert kept.pk is not None  # keys are set before the error is raised
        Payload.objects.count()


@needs_postgresql
def test_a_rollback_to_a_savepoint_drops_what_waits_and_a_broken_transaction_refuses_at_once(hospital):
    with transaction.atomic(), writes_at_once():
        Payload.objects.create(content=b"kept", content_type="text/plain")
        try:
            with transaction.atomic():  # a savepoint: what waited before it is written first
                Payload.objects.create(content=b"undone", content_type="t" * 101)  # too long: never sent
                raise KeyError("rolled back")
        except KeyError:
            pass
    assert [bytes(p.content) for p in Payload.objects.all()] == [b"kept"]

    from django.db import models

    with transaction.atomic(), writes_at_once():
        try:  # Django's own save of a row too long for its column: the transaction is spoiled
            models.Model.save(Payload(content=b"x", content_type="t" * 101))
        except DataError:
            pass
        with pytest.raises(TransactionManagementError):  # refused when made, as a statement of its own is
            Payload.objects.create(content=b"late", content_type="text/plain")


@needs_postgresql
def test_a_row_waiting_in_the_batch_saved_again_is_what_saving_it_again_would_be(hospital):
    """An immutable row (the payload) refuses the second save; another is written, then updated."""
    with transaction.atomic(), writes_at_once():
        payload = Payload.objects.create(content=b"x", content_type="text/plain")
        with pytest.raises(ValueError, match="immutable"):
            payload.save()
        delivery = Delivery.objects.create(payload=payload, hospital=hospital, stream="s", sequence=1,
                                           idempotency_key="k")
        delivery.last_error = "again"
        delivery.save(update_fields=["last_error"])
        assert delivery.pk is not None
    assert Delivery.objects.get(pk=delivery.pk).last_error == "again"


@needs_postgresql
def test_what_was_written_before_an_error_in_the_block_stays_written(hospital):
    """As without the block: an error the caller handles inside its transaction does not take back the writes
    made before it."""
    with transaction.atomic():
        try:
            with writes_at_once():
                Payload.objects.create(content=b"kept", content_type="text/plain")
                raise KeyError("not a database error")
        except KeyError:
            pass
    assert [bytes(p.content) for p in Payload.objects.all()] == [b"kept"]


@needs_postgresql  # (SQLite: the block is always a no-op; its suite runs the confirmations through it)
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_write_runs_at_once(hospital):
    """Autocommit: the block changes nothing — every save writes at once and has its key."""
    with CaptureQueriesContext(connection) as queries, writes_at_once():
        payload = Payload.objects.create(content=b"x", content_type="text/plain")
        assert payload.pk is not None
        AuditEvent(action="notification.view", object_id="y").save()
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2


@needs_postgresql
@pytest.mark.integration
def test_a_confirmation_writes_its_rows_in_one_statement_as_it_holds_them(hospital, physician, published,
                                                                          django_capture_on_commit_callbacks):
    """The notification, the frozen payload, its outbox row, the revision and the audit row: one statement
    between the locked read and the commit; what is stored is what the confirmation returned."""
    published("2021-03")
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False) as hooks:
        row, delivery = confirm_demo_patient(hospital, physician, "1100000002")
    # (the published definition's body is read once per process, test_sqlcache: maybe here)
    confirm = [q["sql"] for q in queries.captured_queries
               if not q["sql"].startswith('SELECT "formdefs_formdefinition"')]
    at = max(i for i, sql in enumerate(confirm) if "FOR UPDATE" in sql)  # the confirmation's locked read
    assert [s.split()[0] for s in confirm[at:]] == ["SELECT", "WITH", "RELEASE"], [s[:90] for s in confirm[at:]]
    assert len(hooks) == 1  # the enqueue, after commit
    stored = Delivery.objects.select_related("payload").get(pk=delivery.pk)
    assert (stored.stream, stored.sequence, stored.status, stored.hospital_id) == (str(row.uuid), 1, "queued",
                                                                                   hospital.pk)
    assert bytes(stored.payload.content) == bytes(delivery.payload.content) and stored.payload.sha256
    assert stored.idempotency_key.endswith(stored.payload.sha256[:16])
    revision = NotificationRevision.objects.get(notification=row)
    assert (revision.number, revision.payload_id, revision.delivery_id) == (1, stored.payload_id, stored.pk)
    assert revision.values == row.values and revision.confirmed_by_id == physician.pk
    event = AuditEvent.objects.get(action="notification.confirm", object_id=str(row.uuid))
    assert event.detail["payload_sha256"] == stored.payload.sha256 and event.detail["revision"] == 1
