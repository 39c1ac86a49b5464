"""Redis restarts while a worker is busy: it holds unacknowledged messages (acks_late tasks in the middle of a send,
countdown retries waiting for their time). With celery 5.7.0 such a worker died ("Unrecoverable error:
AttributeError: 'NoneType' object has no attribute 'hostname'", exit code 1); an idle one survived. The product
patches kombu's Redis channel (assist_portal/broker.py). These tests show the patched worker surviving the restart,
reconnecting and delivering everything exactly once, and, as a control, the unpatched worker dying in the same
situation — when the control starts failing, celery/kombu fixed the bug upstream and the patch can go.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.utils import timezone

from assist_portal.delivery.models import Attempt, Delivery
from tests.chaos.conftest import log_text
from tests.conftest import ROOT
from tests.portal.conftest import CeleryWorker, wait_for, worker_env

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CRASH = "'NoneType' object has no attribute 'hostname'"
BUSY_ENV = {"HERSYS_TIMEOUT_SECONDS": "10"}


def hold_unacked(chaos) -> list[int]:
    """Bring the worker into the state that killed it: three countdown retries waiting (HER-SYS answered 429 with
    Retry-After: 15) and two sends in flight (HER-SYS answers after 4 s), with its consumer still asking Redis for
    more (4 pool processes, 2 busy)."""
    chaos.sandbox.set_faults(rate_limit_next=3, retry_after=15)
    retrying = chaos.confirm(3)
    chaos.wait_status(retrying, Delivery.Status.RETRYING, timeout=30)
    chaos.sandbox.set_faults(latency_ms=4000)  # the workers wait up to 10 s (BUSY_ENV)
    sending = chaos.confirm(2)
    chaos.wait_status(sending, Delivery.Status.SENDING, timeout=30)
    wait_for(lambda: int(chaos.redis.cli("HLEN", "unacked") or 0) >= 4, timeout=3)  # retries + sends in flight
    return retrying + sending


def restart_redis(chaos) -> None:
    chaos.redis.stop()  # SIGKILL, no persistence: every queued message is gone
    time.sleep(1)
    chaos.redis.start()


@pytest.fixture
def readiness_for_chaos(settings):
    """/readyz as the chaos harness runs it: one hersys worker beating every second, no beat."""
    settings.READYZ_QUEUES = ["hersys"]
    settings.READYZ_SCHEDULER = False
    settings.HEARTBEAT_STALE_SECONDS = 3


def test_busy_worker_survives_a_redis_restart_and_delivers_everything(chaos, client, readiness_for_chaos):
    worker = chaos.worker(concurrency=4, HEARTBEAT_SECONDS="1", **BUSY_ENV)
    pid = worker.proc.pid
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20)
    held = hold_unacked(chaos)

    chaos.redis.stop()
    outage = client.get("/readyz")
    assert outage.status_code == 503 and "broker" in outage.json()["failing"]
    time.sleep(1)
    chaos.redis.start()
    restarted_at = timezone.now()

    def reconnected():
        text = log_text(worker)
        assert worker.proc.poll() is None, f"the worker died (exit code {worker.proc.returncode}):\n{text[-3000:]}"
        return "Connection to broker lost" in text and text.count("Connected to redis://") >= 2

    wait_for(reconnected, timeout=30)
    time.sleep(2)
    assert worker.proc.poll() is None, f"the worker died:\n{log_text(worker)[-3000:]}"
    assert "Unrecoverable error" not in log_text(worker)

    chaos.sandbox.set_faults(latency_ms=0)
    after = chaos.confirm(3)  # new work after the restart goes through the same worker
    ids = held + after
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=90, sweep=True)
    chaos.assert_exactly_once(ids)

    assert worker.proc.poll() is None and worker.proc.pid == pid
    assert Attempt.objects.filter(delivery_id__in=held, started_at__gt=restarted_at).exists()  # lost tasks redone
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20)  # its heartbeat is back
    print(f"chaos: confirmed={len(ids)} accepted={len(ids)} lost=0 duplicated=0")


# Mark kombu's channel as patched before the project (which patches it on import) loads: the patch then stays off.
UNPATCHED = ("import sys; from kombu.transport import redis as r; "
             "setattr(r.Channel, '_hersys_broker_patch', True); from celery.__main__ import main; sys.exit(main())")


class UnpatchedWorker(CeleryWorker):
    """The same worker without assist_portal/broker.py's patch."""

    def __init__(self, env: dict, log_path, concurrency: int = 4):
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", UNPATCHED, "-A", "assist_portal.celery", "worker", "-Q", "hersys", "-c",
             str(concurrency), "-l", "INFO", "-n", f"unpatched-{id(self)}@%h", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)


def test_control_the_unpatched_worker_dies_in_the_same_restart(chaos, tmp_path):
    """Without the patch (celery 5.7.0 + kombu 5.7.0) the same restart ends the worker with exit code 1. If this
    fails because the worker survived, the upstream fix has landed: drop assist_portal/broker.py and this test."""
    worker = UnpatchedWorker(worker_env(chaos.sandbox, chaos.env(**BUSY_ENV)), tmp_path / "unpatched.log")
    try:
        chaos.wait_ready(worker)
        hold_unacked(chaos)
        restart_redis(chaos)
        wait_for(lambda: worker.proc.poll() is not None, timeout=30)
        assert worker.proc.returncode == 1
        text = log_text(worker)
        assert "Unrecoverable error" in text and CRASH in text
    finally:
        worker.stop()
