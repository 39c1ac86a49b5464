"""Delivery to the real sandbox over HTTPS + mutual TLS: accepted, retried, rejected, never duplicated."""
import pytest
from django.utils import timezone

from assist_portal.delivery.models import Attempt, Delivery
from assist_portal.delivery.services import delivery_attempt, delivery_redrive, delivery_sweep
from assist_portal.notifications import services as nsvc
from tests.portal.conftest import confirm_demo_patient

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def confirmed(hospital, physician, published, django_capture_on_commit_callbacks):
    """A confirmed notification with its queued delivery (the on-commit enqueue is not run)."""
    published("2021-03")
    with django_capture_on_commit_callbacks(execute=False):
        return confirm_demo_patient(hospital, physician)


def test_accepted_with_receipt(confirmed, sandbox):
    notification, delivery = confirmed
    result = delivery_attempt(delivery.pk)
    assert result.status == Delivery.Status.ACCEPTED
    assert result.receipt_id.startswith("HS-")
    received = sandbox.received()
    assert len(received["notifications"]) == 1
    stored = received["notifications"][0]
    assert stored["bundle_identifier"] == str(notification.uuid)
    assert Attempt.objects.get(delivery=delivery).outcome == "accepted"


def test_retry_on_503_then_accepted(confirmed, sandbox, settings):
    _, delivery = confirmed
    sandbox.set_faults(fail_next=1)
    first = delivery_attempt(delivery.pk)
    assert first.status == Delivery.Status.RETRYING and first.last_error
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    second = delivery_attempt(delivery.pk)
    assert second.status == Delivery.Status.ACCEPTED
    assert len(sandbox.received()["notifications"]) == 1


def test_retry_after_is_honoured(confirmed, sandbox):
    _, delivery = confirmed
    sandbox.set_faults(rate_limit_next=1, retry_after=120)
    row = delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.RETRYING
    assert (row.next_attempt_at - timezone.now()).total_seconds() >= 115
    assert delivery_attempt(delivery.pk) is None  # not due yet: nothing sent


def test_permanent_rejection_surfaces_to_people(confirmed, sandbox):
    _, delivery = confirmed
    sandbox.set_faults(accepted_versions=["2022-09"])
    row = delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.REJECTED
    assert row.last_error  # a Japanese, actionable message
    assert delivery_attempt(delivery.pk) is None  # no loop
    assert Attempt.objects.filter(delivery=delivery).count() == 1


def test_dead_letter_after_max_attempts_and_redrive(confirmed, sandbox, settings, central_admin):
    _, delivery = confirmed
    settings.DELIVERY_MAX_ATTEMPTS = 2
    sandbox.set_faults(fail_next=2)
    delivery_attempt(delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert delivery_attempt(delivery.pk).status == Delivery.Status.DEAD
    assert delivery_attempt(delivery.pk) is None
    delivery_redrive(Delivery.objects.get(pk=delivery.pk), central_admin)
    assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED


def test_crash_after_send_is_replayed_without_duplicate(confirmed, sandbox, monkeypatch, settings):
    """A worker that dies after HER-SYS accepted but before recording: the sweeper resends the same
    idempotency key; HER-SYS answers with the original receipt; one notification stored."""
    _, delivery = confirmed
    from assist_portal.delivery import services as dsvc

    real_record = dsvc._record

    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(dsvc, "_record", die)
    with pytest.raises(SystemExit):
        delivery_attempt(delivery.pk)
    monkeypatch.setattr(dsvc, "_record", real_record)
    row = Delivery.objects.get(pk=delivery.pk)
    assert row.status == Delivery.Status.SENDING
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timezone.timedelta(seconds=1))
    settings.DELIVERY_SWEEP_GRACE_SECONDS = 0
    assert delivery_sweep() >= 1
    final = delivery_attempt(delivery.pk)
    assert final.status == Delivery.Status.ACCEPTED
    notifications = sandbox.received()["notifications"]
    assert len(notifications) == 1 and len(notifications[0]["revisions"]) == 1


def test_update_and_withdrawal_reach_the_same_receipt(confirmed, sandbox, physician,
                                                     django_capture_on_commit_callbacks):
    notification, delivery = confirmed
    first = delivery_attempt(delivery.pk)
    with django_capture_on_commit_callbacks(execute=False):
        values = dict(notification.values)
        values["patient.occupation"] = "会社員"
        row, _, update = nsvc.notification_confirm(notification, physician, values, notification.lock_version)
    second = delivery_attempt(update.pk)
    assert second.status == Delivery.Status.ACCEPTED and second.receipt_id == first.receipt_id
    row.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        _, withdrawal = nsvc.notification_withdraw(row, physician, row.lock_version)
    third = delivery_attempt(withdrawal.pk)
    assert third.receipt_id == first.receipt_id
    stored = sandbox.received()["notifications"]
    assert len(stored) == 1 and stored[0]["status"] == "withdrawn"


def test_rejection_is_shown_to_the_user_with_what_to_do(client, confirmed, sandbox, physician, login):
    from django.urls import reverse

    notification, delivery = confirmed
    sandbox.set_faults(accepted_versions=["2022-09"])
    delivery_attempt(delivery.pk)
    login(client, physician)
    status = client.get(reverse("notifications:status-json", args=[notification.uuid])).json()
    assert status["status"] == "rejected" and status["final"] is True
    assert status["error"] and "修正" in status["guidance"]
    page = client.get(reverse("notifications:status", args=[notification.uuid])).content.decode()
    assert status["error"] in page and "差戻し" in page


def test_retry_window_turns_a_long_outage_into_a_dead_letter(confirmed, sandbox, settings):
    _, delivery = confirmed
    settings.DELIVERY_MAX_ATTEMPTS = 0
    sandbox.set_faults(fail_next=5)
    assert delivery_attempt(delivery.pk).status == Delivery.Status.RETRYING  # inside the window
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now(),
                                                   created_at=timezone.now() - timezone.timedelta(days=2))
    assert delivery_attempt(delivery.pk).status == Delivery.Status.DEAD


def test_redelivered_task_under_a_held_lease_comes_back_when_it_expires(confirmed, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    from assist_portal.delivery import services as dsvc

    _, delivery = confirmed
    Delivery.objects.filter(pk=delivery.pk).update(status="sending",
                                                   lease_until=timezone.now() + timezone.timedelta(seconds=30))
    calls = []
    monkeypatch.setattr(dsvc, "delivery_enqueue", lambda pk, countdown=None: calls.append((pk, countdown)))
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_attempt(delivery.pk) is None
    assert len(calls) == 1 and calls[0][0] == delivery.pk and 29 <= calls[0][1] <= 32


def test_attempt_numbers_keep_counting_after_a_redrive(confirmed, sandbox, settings, central_admin):
    _, delivery = confirmed
    settings.DELIVERY_MAX_ATTEMPTS = 1
    sandbox.set_faults(fail_next=1)
    assert delivery_attempt(delivery.pk).status == Delivery.Status.DEAD
    delivery_redrive(Delivery.objects.get(pk=delivery.pk), central_admin)
    assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", flat=True)) == [1, 2]


def test_the_threads_of_a_worker_share_one_hersys_client(sandbox):
    """A worker's threads (ADR 0021) all starting at once get one client between them, not one each."""
    import threading

    from assist_portal.delivery.services import hersys_client

    hersys_client.cache_clear()
    barrier, clients = threading.Barrier(6), []

    def get():
        barrier.wait(5)
        clients.append(hersys_client())

    threads = [threading.Thread(target=get) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(clients) == 6 and len({id(c) for c in clients}) == 1
