"""SIGKILL of the confirming process at random points (issue 12): a confirmation is committed together with its
outbox row or not at all — never "confirmed, never sent".

The confirming process (tests/chaos/confirmer.py) runs the physician's confirmation over and over on the test
database and is SIGKILLed at a random moment, again and again; after each kill the database must hold no committed
revision without its outbox row. Then a worker and the sweeper deliver everything, and the sandbox must hold every
confirmed revision exactly once. `test_the_kill_test_catches_the_outbox_written_after_commit` plants that bug in the
confirming process and shows the same check failing.
"""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db.models import Count, F

from assist_portal.delivery.models import Delivery
from assist_portal.notifications.models import Notification, NotificationRevision
from tests.chaos.conftest import CHAOS_N, ROOT, wait_for, worker_env

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KILLS = max(12, CHAOS_N // 4)  # `make chaos` (CHAOS_N=200): 50 kills


def run_and_kill(chaos, log: Path, plant: bool = False) -> None:
    """Start the confirming process, let it confirm for a random while, SIGKILL it."""
    env = worker_env(chaos.sandbox, chaos.env(**({"CHAOS_PLANT_OUTBOX_AFTER_COMMIT": "1"} if plant else {})))
    offset = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.chaos.confirmer", chaos.hospital.code,
                                 chaos.physician.username, f"K{random.randrange(10**6):06d}-"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(log.read_text("utf-8", "replace")[-3000:])
            with open(log, "rb") as fh:
                fh.seek(offset)
                return b"confirmer ready" in fh.read()

        wait_for(ready, timeout=60, interval=0.05)
        time.sleep(random.uniform(0.05, 1.5))  # somewhere in the middle of a confirmation (or between two)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def confirmed_without_outbox() -> int:
    """Committed revisions without their outbox row, plus confirmed notifications missing a revision."""
    orphans = NotificationRevision.objects.filter(delivery__isnull=True).count()
    gaps = (Notification.objects.filter(revision__gt=0).annotate(n=Count("revisions")).exclude(n=F("revision"))
            .count())
    return orphans + gaps


def test_sigkill_of_the_confirming_process_never_leaves_a_confirmation_without_its_outbox_row(chaos, tmp_path):
    log = tmp_path / "confirmer.log"
    for _ in range(KILLS):
        run_and_kill(chaos, log)
        assert confirmed_without_outbox() == 0, "a confirmation was committed without its outbox row"
    revisions = list(NotificationRevision.objects.select_related("notification", "delivery"))
    assert len(revisions) >= KILLS // 2, "the confirming process hardly confirmed anything"

    # Every enqueue after commit died with the process: the sweeper finds the rows, a worker sends them.
    chaos.worker(concurrency=2)
    ids = [r.delivery_id for r in revisions]
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=120, sweep=True)
    expected = {(str(r.notification.uuid), r.number) for r in revisions}
    counts = chaos.tally(expected=expected)
    assert counts == {"confirmed": len(expected), "accepted": len(expected), "lost": 0, "duplicated": 0}
    chaos.assert_exactly_once(ids, tally=False)


def test_the_kill_test_catches_the_outbox_written_after_commit(chaos, tmp_path):
    """The same kills with the outbox row written after the commit (planted): confirmed-never-sent appears."""
    log = tmp_path / "confirmer.log"
    found = 0
    # A kill lands in the planted window (after the commit, before the hook) about one time in four, less on a
    # busy machine: up to three times as many kills as the real test makes (it stops at the first catch), so that
    # a miss means the check cannot see the bug, not bad luck (12 kills missed it once in a CI run, p ≈ 4 %).
    for _ in range(3 * KILLS):
        run_and_kill(chaos, log, plant=True)
        found = confirmed_without_outbox()
        if found:
            break
    assert found > 0, "the planted bug went unnoticed: the kill test would not catch it"
