"""PostgreSQL connections of the workers killed (pg_terminate_backend), and the database refusing the workers for
a while: the workers survive, nothing is lost, nothing is sent twice.

The workers run with PGAPPNAME set to a per-test name, so only their sessions are terminated. Celery's Django fixup
closes every DB connection before and after each task (CONN_MAX_AGE does not keep one across tasks in a worker),
so a connection killed between tasks is harmless; one killed *during* a task breaks that task.
"""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from assist_portal.delivery.models import Attempt, Delivery
from tests.chaos.conftest import log_text, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def admin_sql(sql: str) -> None:
    """Run `sql` as the superuser from the `postgres` maintenance database (a database cannot lock itself out)."""
    import psycopg

    conf = connection.settings_dict
    with psycopg.connect(host=conf["HOST"] or "127.0.0.1", port=conf["PORT"] or 5432, user=conf["USER"] or "postgres",
                         password=conf["PASSWORD"] or None, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def task_failures(worker) -> int:
    """Tasks that hit a database error: retried by Celery (autoretry_for) or, failing that, failed."""
    text = log_text(worker)
    return text.count("raised unexpected") + text.count("retry: Retry in")


def sending_for(ids, at_least: int, seconds: float):
    horizon = timezone.now() - timedelta(seconds=seconds)
    rows = set(Attempt.objects.filter(delivery_id__in=ids, delivery__status=Delivery.Status.SENDING,
                                      outcome=Attempt.Outcome.STARTED, started_at__lte=horizon)
               .values_list("delivery_id", flat=True))
    return rows if len(rows) >= at_least else None


def test_worker_db_sessions_terminated_mid_send(chaos):
    """While two requests wait on HER-SYS, the workers' PostgreSQL sessions are terminated: recording the answer
    fails, the task fails, the worker lives on; after the lease the sweeper replays the same key: one copy each."""
    worker = chaos.worker(concurrency=2, HERSYS_TIMEOUT_SECONDS="10")
    chaos.sandbox.set_faults(latency_ms=300)
    warm = chaos.confirm(2)
    chaos.wait_status(warm, Delivery.Status.ACCEPTED)

    chaos.sandbox.set_faults(latency_ms=2000)
    ids = chaos.confirm(4)
    hit = wait_for(lambda: sending_for(ids, at_least=2, seconds=0.3), timeout=20, interval=0.05)
    assert chaos.worker_db_sessions() >= 2  # each pool process holds its connection for the whole task
    assert chaos.terminate_worker_db_sessions() >= 2
    chaos.sandbox.set_faults(latency_ms=0)

    wait_for(lambda: task_failures(worker) >= 2, timeout=20)  # _record could not commit
    assert worker.proc.poll() is None
    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40, sweep=True)
    chaos.assert_exactly_once(warm + ids)
    for pk in hit:
        first = Attempt.objects.filter(delivery_id=pk).order_by("id").first()
        assert first.outcome == Attempt.Outcome.ABANDONED and first.finished_at is not None  # its answer was never saved
    # The same (surviving) worker did the later work: no process needed restarting.
    assert worker.proc.poll() is None


def test_database_refuses_worker_connections_for_a_while(chaos):
    """The test database stops accepting connections (ALLOW_CONNECTIONS false + terminate, like a restart in
    progress) while confirmations arrive: every task fails before claiming, rows stay `queued` with no attempt;
    once PostgreSQL accepts connections again the same worker, fed by the sweeper, delivers each once."""
    worker = chaos.worker(concurrency=2)
    warm = chaos.confirm(1)
    chaos.wait_status(warm, Delivery.Status.ACCEPTED)
    db = connection.ops.quote_name(connection.settings_dict["NAME"])
    connection.ensure_connection()  # this test process keeps its open session through the outage

    admin_sql(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false")
    try:
        chaos.terminate_worker_db_sessions()
        before = task_failures(worker)
        ids = chaos.confirm(3)
        wait_for(lambda: task_failures(worker) - before >= 3, timeout=20)
        assert "is not currently accepting connections" in log_text(worker)
        assert set(chaos.statuses(ids).values()) == {Delivery.Status.QUEUED}
        assert not Attempt.objects.filter(delivery_id__in=ids).exists()
    finally:
        admin_sql(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")

    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=40, sweep=True)
    chaos.assert_exactly_once(warm + ids)
    assert worker.proc.poll() is None
