"""/healthz and /readyz: liveness of the web process, readiness of the whole product (broker, a live worker per
queue, the scheduler, no overdue delivery). Real PostgreSQL and the test Redis; workers are real where it matters."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from assist_portal.delivery.models import Delivery
from assist_portal.health.models import Heartbeat
from assist_portal.health.services import heartbeat_record
from assist_portal.health.tasks import SCHEDULER, scheduler_heartbeat
from assist_portal.notifications import services as nsvc
from tests.conftest import DEMO_SAMPLES
from tests.portal.conftest import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

PATIENT_REF = "1100000002"


@pytest.fixture
def confirm(hospital, physician, published, django_capture_on_commit_callbacks):
    """Confirm a notification (the on-commit enqueue is not run: no task reaches the broker)."""
    published("2021-03")
    bundle = json.loads((DEMO_SAMPLES / "fhir" / f"{PATIENT_REF}.json").read_text(encoding="utf-8"))

    def make():
        extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=PATIENT_REF,
                                                                     data=bundle))
        with django_capture_on_commit_callbacks(execute=False):
            notification = nsvc.notification_open_from_extract(extract, physician)
            values = dict(notification.values)
            values["report.diagnosis_class"] = "confirmed_patient"
            row, evaluation, delivery = nsvc.notification_confirm(notification, physician, values,
                                                                  notification.lock_version)
        assert delivery is not None, [m.text_ja for m in evaluation.errors]
        return row, delivery

    return make


@pytest.fixture
def alive():
    """Fresh heartbeats: a worker per queue and the scheduler."""
    heartbeat_record(name="default@web-test", kind=Heartbeat.Kind.WORKER, queues=["default"], pid=1)
    heartbeat_record(name="hersys@vpn-test", kind=Heartbeat.Kind.WORKER, queues=["hersys"], pid=2)
    scheduler_heartbeat()


@pytest.fixture
def broker_down():
    """Point the Celery app (what /readyz pings) at a port nobody listens on."""
    import socket

    from assist_portal.celery import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    original = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    yield
    app.conf.broker_url = original


def test_healthz_stays_a_database_probe(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert "no-store" in r["Cache-Control"]


def test_readyz_ready_reports_every_check_without_patient_data(client, alive, confirm, physician):
    notification, delivery = confirm()
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=90))

    r = client.get("/readyz")  # anonymous: no authentication, like /healthz

    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    checks = body["checks"]
    assert set(checks) == {"database", "broker", "workers", "scheduler", "deliveries"}
    assert checks["broker"]["ok"] is True
    assert checks["workers"]["queues"]["hersys"]["alive"] == 1
    assert checks["workers"]["queues"]["default"]["alive"] == 1
    assert checks["deliveries"]["pending"] == 1
    assert checks["deliveries"]["by_status"] == {"queued": 1}
    assert 85 <= checks["deliveries"]["oldest_pending_seconds"] < 200
    assert checks["deliveries"]["overdue_seconds"] < 60
    assert "no-store" in r["Cache-Control"]
    text = r.content.decode()
    for secret in (PATIENT_REF, str(notification.uuid), physician.display_name, "web-test", "vpn-test",
                   delivery.idempotency_key):
        assert secret not in text


def test_readyz_names_everything_that_is_not_ready(client, confirm, broker_down):
    """Broker unreachable, no hersys worker, the default worker's heartbeat stale, no scheduler, and a delivery
    due for an hour that nobody sent: 503 naming all four, each with a Japanese explanation."""
    heartbeat_record(name="default@web-test", kind=Heartbeat.Kind.WORKER, queues=["default"], pid=1)
    Heartbeat.objects.filter(name="default@web-test").update(seen_at=timezone.now() - timedelta(minutes=5))
    _, delivery = confirm()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))

    r = client.get("/readyz")

    body = r.json()
    assert r.status_code == 503, body
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker", "workers", "scheduler", "deliveries"]
    checks = body["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["broker"]["detail"] == "メッセージブローカーに接続できません"
    assert checks["workers"]["queues"]["hersys"] == {"alive": 0, "last_seen_seconds": None}
    assert checks["workers"]["queues"]["default"]["alive"] == 0
    assert checks["workers"]["queues"]["default"]["last_seen_seconds"] >= 299
    assert "default" in checks["workers"]["detail"] and "hersys" in checks["workers"]["detail"]
    assert "ワーカー" in checks["workers"]["detail"]
    assert checks["scheduler"]["last_seen_seconds"] is None
    assert checks["deliveries"]["overdue_seconds"] >= 3599
    assert "送信されていない" in checks["deliveries"]["detail"]


@pytest.mark.parametrize("failing", ["broker", "workers", "scheduler", "deliveries"])
def test_readyz_each_check_alone_makes_it_503(client, alive, confirm, failing, request):
    """Everything healthy but one thing: only that one is named."""
    if failing == "broker":
        request.getfixturevalue("broker_down")
    elif failing == "workers":
        Heartbeat.objects.filter(name="hersys@vpn-test").delete()
    elif failing == "scheduler":
        Heartbeat.objects.filter(name=SCHEDULER).update(seen_at=timezone.now() - timedelta(minutes=10))
    else:
        _, delivery = confirm()
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING,
                                                       lease_until=timezone.now() - timedelta(minutes=30))
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == [failing]


def test_readyz_counts_pending_deliveries_per_status(client, alive, confirm):
    ids = [confirm()[1].pk for _ in range(3)]
    Delivery.objects.filter(pk=ids[0]).update(status=Delivery.Status.RETRYING,
                                              next_attempt_at=timezone.now() + timedelta(minutes=1))
    deliveries = client.get("/readyz").json()["checks"]["deliveries"]
    assert deliveries["pending"] == 3
    assert deliveries["by_status"] == {"queued": 2, "retrying": 1}


def test_readyz_database_down_is_503(client, monkeypatch):
    from assist_portal.health import selectors

    monkeypatch.setattr(selectors, "database_ok", lambda: False)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["database"]


def test_retrying_for_hours_is_pending_not_overdue(client, alive, confirm, settings):
    """HER-SYS down for hours: the delivery is old and retrying, its next attempt lies ahead. That is shown (age),
    but the product is ready: the machinery works, the destination does not."""
    _, delivery = confirm()
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.RETRYING, attempts=30,
                                                   created_at=timezone.now() - timedelta(hours=5),
                                                   next_attempt_at=timezone.now() + timedelta(minutes=4))
    r = client.get("/readyz")
    assert r.status_code == 200, r.json()
    deliveries = r.json()["checks"]["deliveries"]
    assert deliveries["oldest_pending_seconds"] >= 5 * 3600 - 5
    assert deliveries["overdue_seconds"] == 0
    assert deliveries["by_status"] == {"retrying": 1}

    settings.READYZ_MAX_DELIVERY_LAG_SECONDS = 600
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=601))
    assert client.get("/readyz").status_code == 503


def test_a_revision_waiting_for_the_earlier_one_is_not_overdue(client, alive, confirm, physician):
    """A withdrawal queued behind its notification's first revision (retrying, HER-SYS down) waits by design."""
    notification, first = confirm()
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.RETRYING,
                                                next_attempt_at=timezone.now() + timedelta(minutes=5))
    notification.refresh_from_db()
    _, second = nsvc.notification_withdraw(notification, physician, notification.lock_version)
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now() - timedelta(hours=2))

    r = client.get("/readyz")
    assert r.status_code == 200, r.json()
    assert r.json()["checks"]["deliveries"]["pending"] == 2

    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.ACCEPTED)  # now nothing holds it back
    assert client.get("/readyz").status_code == 503


def test_heartbeat_check_command(alive, capsys):
    from django.core.management import call_command

    call_command("heartbeat_check", "--worker", "hersys@vpn-test")
    call_command("heartbeat_check", "--scheduler")
    Heartbeat.objects.filter(name="hersys@vpn-test").update(seen_at=timezone.now() - timedelta(minutes=5))
    with pytest.raises(SystemExit) as stale:
        call_command("heartbeat_check", "--worker", "hersys@vpn-test")
    assert stale.value.code == 1
    with pytest.raises(SystemExit):
        call_command("heartbeat_check", "--worker", "nobody@nowhere")
    assert "応答がありません" in capsys.readouterr().err


def test_a_real_worker_beats_and_removes_its_row_on_shutdown(celery_worker_factory):
    """A Celery worker subprocess (queue hersys) writes its row from its event loop, keeps it fresh, and deletes it
    when it shuts down cleanly."""
    worker = celery_worker_factory(env={"HEARTBEAT_SECONDS": "0.5"})

    def row():
        return Heartbeat.objects.filter(kind=Heartbeat.Kind.WORKER, pid=worker.proc.pid).first()

    first = wait_for(row, timeout=40)
    assert first.queues == ["hersys"]
    assert first.name.startswith("test-") and "@" in first.name
    wait_for(lambda: row() and row().seen_at > first.seen_at + timedelta(seconds=0.4), timeout=10)

    worker.stop()
    assert not Heartbeat.objects.filter(name=first.name).exists()
