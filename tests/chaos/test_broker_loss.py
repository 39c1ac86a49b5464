"""Redis (the Celery broker) down or restarted: the outbox row is the truth, the sweeper re-enqueues what the
broker lost, and duplicate task messages never become duplicate notifications.

Uses the chaos session's own throw-away redis-server (never the shared one on 6379), killed and restarted for real.
"""
import pytest

from assist_portal.delivery.models import Attempt, Delivery
from assist_portal.delivery.services import delivery_enqueue

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_broker_down_at_confirm_time_outbox_survives_and_sweeper_enqueues(chaos):
    """Redis dies under a running worker; physicians keep confirming (the on-commit enqueue fails and is only
    logged); Redis comes back empty; the worker reconnects and the sweeper enqueues the rows: accepted once."""
    chaos.worker(concurrency=2)
    warm = chaos.confirm(1)
    chaos.wait_status(warm, Delivery.Status.ACCEPTED)

    chaos.redis.stop()
    ids = chaos.confirm(4)  # must not raise: confirmation never depends on the broker
    assert set(chaos.statuses(ids).values()) == {Delivery.Status.QUEUED}
    assert not Attempt.objects.filter(delivery_id__in=ids).exists()
    chaos.redis.start()
    assert chaos.redis.queue_length() == 0  # the tasks really are gone: only the outbox knows about them

    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=60, sweep=True)
    chaos.assert_exactly_once(warm + ids)


def test_queued_tasks_lost_in_a_redis_restart_are_swept(chaos):
    """Tasks were enqueued while no worker ran; Redis crashes (no persistence) and loses them; a worker starts on
    the empty broker; the sweeper finds the rows."""
    ids = chaos.confirm(4)
    assert chaos.redis.queue_length() == 4
    chaos.redis.stop()
    chaos.redis.start()
    assert chaos.redis.queue_length() == 0

    chaos.worker(concurrency=2)
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40, sweep=True)
    chaos.assert_exactly_once(ids)


def test_duplicate_task_messages_send_each_revision_once(chaos):
    """Every delivery enqueued six times (on-commit + five sweeps/redeliveries) onto four pool processes while
    HER-SYS is slow: the lease lets exactly one task send; exactly one attempt per delivery."""
    chaos.sandbox.set_faults(latency_ms=300)
    ids = chaos.confirm(5)
    for _ in range(5):
        for pk in ids:
            delivery_enqueue(pk)
    assert chaos.redis.queue_length() == 30
    chaos.worker(concurrency=4)
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40)
    chaos.assert_exactly_once(ids)
    for pk in ids:
        assert Attempt.objects.filter(delivery_id=pk).count() == 1, chaos.attempt_summary([pk])
