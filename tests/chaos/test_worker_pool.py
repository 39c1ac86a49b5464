"""The shipped worker pool (CELERY_WORKER_POOL, default `threads`, ADR 0021): deliveries run as threads of the
worker process itself, `-c` of them at once, and a busy worker still delivers each notification exactly once."""
import socket

import pytest

from assist_portal.delivery.models import Attempt, Delivery
from tests.chaos.conftest import wait_for
from tests.chaos.test_worker_kill import in_flight

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_default_pool_sends_concurrently_from_threads_of_the_worker_process(chaos):
    worker = chaos.worker(concurrency=2, HERSYS_TIMEOUT_SECONDS="10")
    warm = chaos.confirm(1)
    chaos.wait_status(warm, Delivery.Status.ACCEPTED, timeout=30)

    chaos.sandbox.set_faults(latency_ms=1500)
    ids = chaos.confirm(3)
    # Two requests on the wire at the same time: -c 2 means two sends at once, not one after the other.
    busy = wait_for(lambda: in_flight(ids, at_least=2, for_seconds=0.3), timeout=20, interval=0.05)
    assert len(busy) == 2
    assert chaos.pool_children(worker) == []  # no pool processes: the worker's own threads send
    chaos.sandbox.set_faults(latency_ms=0)

    chaos.wait_status(warm + ids, Delivery.Status.ACCEPTED, timeout=30)
    chaos.assert_exactly_once(warm + ids)
    senders = set(Attempt.objects.filter(delivery_id__in=warm + ids).values_list("worker", flat=True))
    assert senders == set(chaos.attempt_workers(worker)) == {f"{socket.gethostname()}:{worker.proc.pid}"}
