"""A delivery that is simply due is claimed, and an accepted one recorded, by one statement each on PostgreSQL
(`_claim_at_once`, `_record_accepted_at_once`, issue 13); they write what the general path writes and leave every
other case to it."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery import services as dsvc
from assist_portal.delivery.models import Attempt, Delivery
from tests.portal.conftest import confirm_demo_patient

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

needs_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                      reason="the one-statement paths are PostgreSQL's (SQLite: the general path)")


@pytest.fixture
def confirm(hospital, physician, published, django_capture_on_commit_callbacks):
    """confirm(patient_ref) → a confirmed notification's queued delivery (its on-commit enqueue not run)."""
    published("2021-03")

    def make(ref: str) -> Delivery:
        with django_capture_on_commit_callbacks(execute=False):
            return confirm_demo_patient(hospital, physician, ref)[1]

    return make


def written(delivery_id: int) -> dict:
    """What a delivery's try left in the database, without what differs between any two tries (ids, times,
    the receipt number HER-SYS gives)."""
    row = Delivery.objects.get(pk=delivery_id)
    attempts = [{"number": a.number, "outcome": a.outcome, "message": a.message, "http_status": a.http_status,
                 "worker": a.worker, "finished": a.finished_at is not None and a.finished_at >= a.started_at}
                for a in Attempt.objects.filter(delivery_id=delivery_id).order_by("id")]
    audit = [{"action": e.action, "hospital_code": e.hospital_code, "object_type": e.object_type,
              "object_id_is_this": e.object_id == str(getattr(row, "uuid", None) or row.pk), "detail": e.detail,
              "actor": (e.actor_id, e.actor_username, e.actor_role), "ip": e.ip, "user_agent": e.user_agent}
             for e in AuditEvent.objects.filter(action__startswith="delivery.", object_id=str(
                 getattr(row, "uuid", None) or row.pk)).order_by("id")]
    return {"status": row.status, "attempts": row.attempts, "lease_until": row.lease_until,
            "receipt": row.receipt_id.startswith("HS-"), "report_date": row.report_date, "last_error": row.last_error,
            "next_attempt_before_update": row.next_attempt_at <= row.updated_at, "updated": row.updated_at >= row.created_at,
            "attempt_rows": attempts, "audit": audit}


@needs_postgresql
def test_a_due_delivery_is_claimed_and_accepted_in_two_statements(confirm, sandbox):
    delivery = confirm("1100000002")
    with CaptureQueriesContext(connection) as queries:
        row = dsvc.delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.ACCEPTED and row.receipt_id.startswith("HS-")
    assert len(queries.captured_queries) == 2, [q["sql"][:120] for q in queries.captured_queries]
    assert len(sandbox.received()["notifications"]) == 1


@needs_postgresql
def test_one_statement_paths_write_what_the_general_path_writes(confirm, sandbox, monkeypatch):
    fast = confirm("1100000002")
    assert dsvc.delivery_attempt(fast.pk).status == Delivery.Status.ACCEPTED

    general = confirm("1200000030")
    monkeypatch.setattr(dsvc, "_claim_at_once", lambda *a: None)
    monkeypatch.setattr(dsvc, "_record_accepted_at_once", lambda *a: None)
    assert dsvc.delivery_attempt(general.pk).status == Delivery.Status.ACCEPTED

    assert written(fast.pk) == written(general.pk)
    assert written(fast.pk)["audit"] and written(fast.pk)["attempt_rows"]


@needs_postgresql
def test_a_retry_that_is_due_is_claimed_at_once_and_numbered_after_the_first(confirm, sandbox):
    delivery = confirm("1100000002")
    sandbox.set_faults(fail_next=1)
    assert dsvc.delivery_attempt(delivery.pk).status == Delivery.Status.RETRYING
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert dsvc.delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED
    assert len(queries.captured_queries) == 2
    assert list(Attempt.objects.filter(delivery=delivery).order_by("id").values_list("number", "outcome")) == [
        (1, Attempt.Outcome.RETRYABLE), (2, Attempt.Outcome.ACCEPTED)]
    row = Delivery.objects.get(pk=delivery.pk)
    assert (row.last_error, row.lease_until, row.attempts) == ("", None, 2)  # the retry's error is cleared


@needs_postgresql
@pytest.mark.parametrize("state", ["lease held", "retry not due", "held", "dead", "accepted", "lease ran out"])
def test_what_is_not_simply_due_is_left_to_the_general_path(confirm, state):
    delivery = confirm("1100000002")
    now = timezone.now()
    change = {
        "lease held": {"status": "sending", "lease_until": now + timezone.timedelta(seconds=30)},
        "lease ran out": {"status": "sending", "lease_until": now - timezone.timedelta(seconds=1)},
        "retry not due": {"status": "retrying", "next_attempt_at": now + timezone.timedelta(seconds=60)},
        "held": {"status": "held"}, "dead": {"status": "dead"}, "accepted": {"status": "accepted"},
    }[state]
    Delivery.objects.filter(pk=delivery.pk).update(**change)
    before = Delivery.objects.filter(pk=delivery.pk).values().get()
    assert dsvc._claim_at_once(delivery.pk, now) is None
    assert Delivery.objects.filter(pk=delivery.pk).values().get() == before
    assert not Attempt.objects.filter(delivery=delivery).exists()


@needs_postgresql
def test_a_later_revision_waits_for_an_earlier_one_still_pending(confirm):
    first = confirm("1100000002")
    later = Delivery.objects.create(stream=first.stream, sequence=first.sequence + 1, payload=first.payload,
                                    hospital=first.hospital, idempotency_key=first.idempotency_key + "-2")
    assert dsvc._claim_at_once(later.pk, timezone.now()) is None
    assert dsvc._claim_at_once(first.pk, timezone.now()) is not None


@needs_postgresql
def test_an_acceptance_of_a_delivery_no_longer_sending_closes_the_attempt_only(confirm, sandbox):
    """As the general path: the attempt is closed with what HER-SYS answered, the delivery and the audit log keep
    what the one who finished it wrote."""
    delivery = confirm("1100000002")
    claimed, attempt, _ = dsvc._claim_at_once(delivery.pk, timezone.now())
    Delivery.objects.filter(pk=delivery.pk).update(status="accepted", receipt_id="HS-OTHER")
    receipt = type("Receipt", (), {"receipt_id": "HS-MINE", "report_date": None})()
    audits = AuditEvent.objects.count()
    assert dsvc._record_accepted_at_once(claimed, attempt, Attempt.Outcome.ACCEPTED, "受理されました", 200, receipt,
                                         timezone.now()) is None
    assert Delivery.objects.get(pk=delivery.pk).receipt_id == "HS-OTHER"
    assert AuditEvent.objects.count() == audits
    closed = Attempt.objects.get(pk=attempt.pk)
    assert (closed.outcome, closed.http_status, closed.finished_at is not None) == (Attempt.Outcome.ACCEPTED, 200,
                                                                                    True)


def test_the_one_statement_transitions_are_ones_the_state_machine_allows():
    allowed = dsvc.ALLOWED
    assert Delivery.Status.SENDING in allowed[Delivery.Status.QUEUED]
    assert Delivery.Status.SENDING in allowed[Delivery.Status.RETRYING]
    assert Delivery.Status.ACCEPTED in allowed[Delivery.Status.SENDING]


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_claim_in_autocommit_takes_the_lease_and_two_at_once_claim_once(hospital, physician, published,
                                                                          monkeypatch, settings):
    """As a worker runs it (autocommit, no test transaction around it): the claim leaves the row `sending` under a
    lease with its attempt started; two workers claiming the same delivery at the same moment, each on its own
    connection, claim it once."""
    import threading

    from django.db import connection as own

    monkeypatch.setattr(dsvc, "delivery_enqueue", lambda *a, **k: None)  # no worker here
    published("2021-03")
    first = confirm_demo_patient(hospital, physician)[1]
    now = timezone.now()
    claimed, attempt, token = dsvc._claim_at_once(first.pk, now)
    row = Delivery.objects.get(pk=first.pk)
    assert (row.status, row.attempts, token is not None) == (Delivery.Status.SENDING, 1, True)
    assert row.lease_until == now + timezone.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    assert list(Attempt.objects.filter(delivery=row).values_list("pk", "number", "outcome", "finished_at")) == [
        (attempt.pk, 1, Attempt.Outcome.STARTED, None)]

    second = confirm_demo_patient(hospital, physician, "1200000030")[1]
    barrier, results, errors = threading.Barrier(2), [], []

    def claim():
        try:
            barrier.wait(5)
            results.append(dsvc._claim(second.pk))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            own.close()

    workers = [threading.Thread(target=claim) for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert not errors, errors
    assert sum(r is not None for r in results) == 1
    assert Attempt.objects.filter(delivery=second).count() == 1
    assert Delivery.objects.get(pk=second.pk).attempts == 1
