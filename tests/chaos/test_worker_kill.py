"""A Celery worker SIGKILLed while HER-SYS requests are in flight: nothing lost, nothing sent twice.

The dangerous window is "HER-SYS stored it, the worker died before recording the receipt". The sandbox keeps
processing a request whose client died (its latency sleep runs before it stores), so killing the worker mid-request
produces exactly that window; recovery must replay the same idempotency key and get the original receipt.
"""
import os
import re
import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from assist_portal.delivery.models import Attempt, Delivery
from tests.chaos.conftest import log_text, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEASE = 3
RECEIVED = re.compile(r"tasks\.deliver\[([0-9a-f-]+)\] received")


def in_flight(ids, at_least: int, for_seconds: float):
    """Deliveries in `sending` whose open attempt started at least `for_seconds` ago (request on the wire)."""
    horizon = timezone.now() - timedelta(seconds=for_seconds)
    rows = set(Attempt.objects.filter(delivery_id__in=ids, delivery__status=Delivery.Status.SENDING,
                                      outcome=Attempt.Outcome.STARTED, started_at__lte=horizon)
               .values_list("delivery_id", flat=True))
    return rows if len(rows) >= at_least else None


def test_worker_sigkilled_mid_send_then_new_worker_and_beat_sweeper(chaos):
    """3 requests in flight when the whole worker (process group) is SIGKILLed; a new worker plus a real
    `celery beat` running the product's sweeper schedule brings every delivery to `accepted` exactly once."""
    worker = chaos.worker(concurrency=3, HERSYS_TIMEOUT_SECONDS="10", DELIVERY_LEASE_SECONDS=str(LEASE))
    # Warm-up: every pool process fetches its OAuth token, so the killed requests are the submissions themselves.
    chaos.sandbox.set_faults(latency_ms=400)
    warm = chaos.confirm(3)
    chaos.wait_status(warm, Delivery.Status.ACCEPTED, timeout=30)

    chaos.sandbox.set_faults(latency_ms=2500)
    ids = chaos.confirm(6)
    killed = wait_for(lambda: in_flight(ids, at_least=3, for_seconds=0.5), timeout=20, interval=0.05)
    worker.kill()
    assert worker.proc.poll() is not None
    chaos.sandbox.set_faults(latency_ms=0)  # requests already inside the sandbox still finish their 2.5 s

    # The sandbox stores what the dead worker sent; the outbox still says `sending` (the receipt was never recorded).
    sandbox_ids = lambda: {n["bundle_identifier"] for n in chaos.sandbox.received(False)["notifications"]}  # noqa: E731
    killed_uuids = {d.stream: d.pk for d in Delivery.objects.filter(pk__in=killed)}  # stream = notification uuid
    wait_for(lambda: sandbox_ids() & set(killed_uuids), timeout=10)
    assert set(chaos.statuses(killed).values()) == {Delivery.Status.SENDING}
    accepted_unrecorded = [killed_uuids[u] for u in sandbox_ids() & set(killed_uuids)]
    assert accepted_unrecorded, "the test never produced the 'stored but not recorded' window"

    chaos.worker(concurrency=3, DELIVERY_LEASE_SECONDS=str(LEASE))
    chaos.beat(DELIVERY_SWEEP_SECONDS="1")  # the product's beat schedule: sweep_deliveries every second
    chaos.wait_status(warm + ids, Delivery.Status.ACCEPTED, timeout=60)
    chaos.assert_exactly_once(warm + ids)

    for pk in killed:
        attempts = list(Attempt.objects.filter(delivery_id=pk).order_by("id"))
        first, *later = attempts
        assert first.outcome == Attempt.Outcome.ABANDONED and first.finished_at is not None  # died mid-send
        assert later and later[-1].outcome == Attempt.Outcome.ACCEPTED
        assert first.worker != later[-1].worker
        # The lease held: nobody resent while the first worker might still have been alive.
        assert (later[0].started_at - first.started_at).total_seconds() >= LEASE - 0.05


def test_pool_process_killed_task_redelivered_lease_prevents_double_send(chaos):
    """Only the pool process dies (the worker's main process survives): acks_late + reject_on_worker_lost
    requeue the message and the same task runs again in a fresh pool process. Whenever that happens, it must not
    send while the dead attempt's lease is held: if the lease is still held it returns without sending (the sweeper
    resumes the delivery when the lease expires); if Celery noticed the death late, it resends the same key.
    Pool processes exist with CELERY_WORKER_POOL=prefork only (the default thread pool dies as a whole: above)."""
    worker = chaos.worker(concurrency=1, HERSYS_TIMEOUT_SECONDS="10", DELIVERY_LEASE_SECONDS=str(LEASE),
                          CELERY_WORKER_POOL="prefork")
    warm = chaos.confirm(1)
    chaos.wait_status(warm, Delivery.Status.ACCEPTED, timeout=30)

    chaos.sandbox.set_faults(latency_ms=2500)
    ids = chaos.confirm(1)
    wait_for(lambda: in_flight(ids, at_least=1, for_seconds=0.5), timeout=20, interval=0.05)
    children = chaos.pool_children(worker)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    chaos.sandbox.set_faults(latency_ms=0)

    # The main process notices, rejects the message with requeue, and a fresh pool process runs it again.
    wait_for(lambda: "WorkerLostError" in log_text(worker), timeout=20)
    redelivered = wait_for(lambda: [t for t, n in Counter(RECEIVED.findall(log_text(worker))).items() if n >= 2],
                           timeout=20)
    assert len(redelivered) == 1
    done = wait_for(lambda: re.search(rf"deliver\[{redelivered[0]}\] succeeded in [0-9.]+s: (\S+)",
                                      log_text(worker)), timeout=20)
    assert done.group(1) in ("None", "'accepted'")
    assert worker.proc.poll() is None

    # The redelivery alone finishes the job only if the lease had already expired; otherwise the sweeper does.
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=30, sweep=True)
    chaos.assert_exactly_once(warm + ids)
    first, *later = Attempt.objects.filter(delivery_id=ids[0]).order_by("id")
    assert first.outcome == Attempt.Outcome.ABANDONED and first.finished_at is not None
    assert [a.outcome for a in later] == [Attempt.Outcome.ACCEPTED]
    assert (later[0].started_at - first.started_at).total_seconds() >= LEASE - 0.05  # never inside the lease
