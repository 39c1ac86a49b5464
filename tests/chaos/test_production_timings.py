"""The shipped defaults under chaos (issue 12): lease 120 s, sweep every 30 s, grace 30 s, backoff up to 300 s.

Every other chaos test shrinks the timings to seconds; this one runs the product as shipped (only the sandbox and
the broker are the test's): two workers and a real `celery beat`, CHAOS_N confirmations (30 in `make test`, 200 in
`make chaos`), 503s answered with backoff, a worker SIGKILLed with requests in flight, and Redis restarted without
its data while the surviving worker holds unacknowledged messages. Recovery must come from the product's own
machinery at its own pace: the lease running out, beat's sweeper closing the dead attempts as `abandoned` and
re-enqueuing. It takes about three minutes whatever CHAOS_N is (the lease and the sweep period dominate).
"""
from datetime import timedelta

import pytest

from assist_portal.delivery.models import Attempt, Delivery
from tests.chaos.conftest import CHAOS_N, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SHIPPED = {  # the defaults of assist_portal/settings.py, spelled out so a test override cannot creep in
    "DELIVERY_LEASE_SECONDS": "120", "DELIVERY_SWEEP_SECONDS": "30", "DELIVERY_SWEEP_GRACE_SECONDS": "30",
    "DELIVERY_BACKOFF_BASE": "2", "DELIVERY_BACKOFF_CAP": "300", "DELIVERY_MAX_ATTEMPTS": "0",
    "HERSYS_TIMEOUT_SECONDS": "10", "DELIVERY_RETRY_WINDOW_SECONDS": str(24 * 3600),
}


def test_shipped_defaults_worker_kill_and_redis_restart(chaos):
    from django.conf import settings as live

    assert (live.DELIVERY_LEASE_SECONDS, live.DELIVERY_BACKOFF_CAP) == (120, 300.0)  # still the shipped values
    chaos.sandbox.set_faults(latency_ms=300, fail_next=max(3, CHAOS_N // 10))
    ids = chaos.confirm(CHAOS_N)  # all queued in Redis before any worker runs

    def started_on(worker):
        return Attempt.objects.filter(delivery_id__in=ids, outcome=Attempt.Outcome.STARTED,
                                      worker__in=chaos.attempt_workers(worker))

    victim = chaos.worker(concurrency=2, **SHIPPED)
    wait_for(lambda: started_on(victim).exists(), timeout=60, interval=0.02)
    pool = chaos.attempt_workers(victim)
    victim.kill()
    killed = list(Attempt.objects.filter(delivery_id__in=ids, outcome=Attempt.Outcome.STARTED, worker__in=pool)
                  .values_list("delivery_id", flat=True))  # their worker is gone: these stay started
    assert killed
    survivor = chaos.worker(concurrency=2, **SHIPPED)
    chaos.beat(**SHIPPED)
    # Redis loses everything while the survivor holds unacknowledged messages (acks_late, countdown retries).
    wait_for(lambda: started_on(survivor).exists(), timeout=60, interval=0.02)
    chaos.redis.stop()
    chaos.redis.start()

    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=480)
    counts = chaos.tally(ids)
    assert counts == {"confirmed": CHAOS_N, "accepted": CHAOS_N, "lost": 0, "duplicated": 0}
    chaos.assert_exactly_once(ids, tally=False)
    assert survivor.proc.poll() is None

    for pk in killed:
        first, *later = Attempt.objects.filter(delivery_id=pk).order_by("id")
        assert first.outcome == Attempt.Outcome.ABANDONED and first.finished_at is not None
        assert later[-1].outcome == Attempt.Outcome.ACCEPTED
        # Nobody resent while the dead worker's lease (120 s) could still have been honoured.
        assert later[0].started_at - first.started_at >= timedelta(seconds=120)
