"""HER-SYS (the sandbox subprocess over mutual TLS) down, failing, throttling or timing out: every delivery ends
`accepted` exactly once, through the worker's own retry path (no sweeper unless stated)."""
import pytest

from assist_portal.delivery.models import Attempt, Delivery
from tests.chaos.conftest import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UNREACHABLE = "HER-SYS に接続できませんでした"
TIMED_OUT = "HER-SYS の応答がタイムアウトしました"


def attempts(ids, **filters):
    return Attempt.objects.filter(delivery_id__in=ids, **filters)


def every_delivery_has(ids, **filters) -> bool:
    return set(attempts(ids, **filters).values_list("delivery_id", flat=True)) == set(ids)


def test_sandbox_outage_then_restart(chaos):
    """The sandbox process is stopped; confirmations keep coming; deliveries wait in `retrying`; after the restart
    (which also revokes every OAuth token the worker cached) all are accepted exactly once."""
    chaos.worker(concurrency=2)
    warm = chaos.confirm(1)  # the worker now holds a token the restart will revoke
    chaos.wait_status(warm, Delivery.Status.ACCEPTED)

    chaos.sandbox.stop()
    try:
        ids = chaos.confirm(5)
        wait_for(lambda: every_delivery_has(ids, outcome=Attempt.Outcome.RETRYABLE, message__startswith=UNREACHABLE),
                 timeout=30)
        assert Delivery.Status.ACCEPTED not in chaos.statuses(ids).values()
        chaos.wait_status(ids, Delivery.Status.RETRYING, at_least=1, timeout=10)
    finally:
        chaos.sandbox.restart()
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40)
    chaos.assert_exactly_once(warm + ids)
    assert Delivery.objects.filter(pk__in=ids).exclude(last_error="").count() == 0


def test_503_burst_every_failure_is_one_recorded_attempt(chaos):
    """fail_next=10 over 5 deliveries: exactly ten 503 attempts are recorded, then all accepted, one copy each."""
    chaos.worker(concurrency=2)
    chaos.sandbox.set_faults(fail_next=10)
    ids = chaos.confirm(5)
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40)
    chaos.assert_exactly_once(ids)
    assert attempts(ids, http_status=503, outcome=Attempt.Outcome.RETRYABLE).count() == 10
    assert attempts(ids, outcome=Attempt.Outcome.ACCEPTED).count() == 5
    assert attempts(ids).count() == 15


def test_429_retry_after_is_honoured_over_the_backoff_cap(chaos):
    """429 with Retry-After: 2 while the worker's backoff cap is 1 s: the next try waits at least 2 s."""
    chaos.worker(concurrency=1, DELIVERY_BACKOFF_CAP="1")
    chaos.sandbox.set_faults(rate_limit_next=3, retry_after=2)
    ids = chaos.confirm(3)
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40)
    chaos.assert_exactly_once(ids)
    assert attempts(ids, http_status=429).count() == 3
    for pk in ids:
        first, second, *rest = attempts([pk]).order_by("id")
        assert first.http_status == 429 and first.outcome == Attempt.Outcome.RETRYABLE
        assert "送信数の制限" in first.message
        assert (second.started_at - first.finished_at).total_seconds() >= 1.95
        assert not rest and second.outcome == Attempt.Outcome.ACCEPTED


def test_timeouts_when_the_request_was_dropped_unprocessed(chaos):
    """timeout_next: the sandbox drops the request unprocessed; the client gives up after 1 s; the retry stores it."""
    chaos.worker(concurrency=3, HERSYS_TIMEOUT_SECONDS="1")
    chaos.sandbox.set_faults(timeout_next=3)
    ids = chaos.confirm(3)
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40)
    chaos.assert_exactly_once(ids)
    assert attempts(ids, message__startswith=TIMED_OUT).count() == 3


def test_timeouts_when_the_request_was_processed_after_the_client_gave_up(chaos):
    """The sandbox answers after 1.8 s, the worker gives up after 1 s: HER-SYS has stored every notification while
    the outbox still says not accepted. The retries replay the same key and get the original receipt."""
    chaos.worker(concurrency=1, HERSYS_TIMEOUT_SECONDS="1")
    warm = chaos.confirm(1)  # token first: /oauth2/token is slowed by latency_ms too
    chaos.wait_status(warm, Delivery.Status.ACCEPTED)

    chaos.sandbox.set_faults(latency_ms=1800)
    ids = chaos.confirm(3)
    wait_for(lambda: chaos.sandbox.received(False)["count"] == 4 and every_delivery_has(
        ids, message__startswith=TIMED_OUT), timeout=40)
    # Every request times out at this latency, so none can have been recorded as accepted yet.
    assert Delivery.Status.ACCEPTED not in chaos.statuses(ids).values()
    chaos.sandbox.set_faults(latency_ms=0)
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=30)
    stored = chaos.assert_exactly_once(warm + ids)
    assert all(len(n["revisions"]) == 1 for n in stored)
