"""The frozen payload: the document is built once at confirmation, every attempt sends exactly those bytes, the
connector gets exactly those bytes, and after the retention purge there is nothing left to serve (410)."""
import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assist_portal.accounts.models import Hospital
from assist_portal.delivery.models import Delivery, Payload
from assist_portal.delivery.services import delivery_attempt
from assist_portal.notifications import services as nsvc
from assist_portal.notifications.models import Notification
from tests.conftest import DEMO_SAMPLES

pytestmark = [pytest.mark.django_db]
PATIENT = "1100000002"
AUTH = {"HTTP_AUTHORIZATION": "Api-Key key-h0001"}


def confirm_new(hospital, physician, capture):
    bundle = json.loads((DEMO_SAMPLES / "fhir" / f"{PATIENT}.json").read_text())
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=PATIENT, data=bundle))
    with capture(execute=False):
        n = nsvc.notification_open_from_extract(extract, physician)
        values = dict(n.values, **{"report.diagnosis_class": "confirmed_patient"})
        n, evaluation, delivery = nsvc.notification_confirm(n, physician, values, n.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return n, delivery


def organization(body: bytes) -> dict:
    bundle = json.loads(body)
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization")


def rename_facility(hospital) -> None:
    """What a central admin does to the facility master (the fields `facility_master()` reads)."""
    Hospital.objects.filter(pk=hospital.pk).update(name="さくら総合医療センター", address="東京都港区芝公園４−２−８",
                                                   phone="03-0000-9999")


@pytest.mark.integration
def test_two_attempts_of_one_revision_send_identical_bytes_although_the_facility_master_changed(
        hospital, physician, published, sandbox, django_capture_on_commit_callbacks):
    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    revision = n.revisions.get()
    assert revision.payload_id == delivery.payload_id and revision.delivery_id == delivery.pk
    frozen = revision.payload.content
    assert hashlib.sha256(frozen).hexdigest() == revision.payload.sha256
    assert delivery.idempotency_key == f"{n.uuid}:1:{revision.payload.sha256[:16]}"

    sandbox.set_faults(fail_next=1)
    assert delivery_attempt(delivery.pk).status == Delivery.Status.RETRYING
    rename_facility(hospital)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED

    tries = sandbox.requests(idempotency_key=delivery.idempotency_key)
    assert len(tries) == 2  # the 503 and the accepted one
    assert tries[0]["body"] == tries[1]["body"] == frozen
    assert {t["sha256"] for t in tries} == {revision.payload.sha256}
    assert organization(tries[1]["body"])["name"] == "さくら総合病院"  # the master as it was at confirmation
    stored = sandbox.received()["notifications"][0]["revisions"][0]
    assert stored["bundle"] == json.loads(frozen) and stored["idempotency_key"] == delivery.idempotency_key


@pytest.mark.integration
def test_a_replay_after_a_crash_resends_the_same_bytes(hospital, physician, published, sandbox, monkeypatch,
                                                       settings, django_capture_on_commit_callbacks):
    """A worker that dies after HER-SYS stored the request: the resend under the same key is the same bytes."""
    from assist_portal.delivery import services as dsvc

    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    real_record = dsvc._record
    monkeypatch.setattr(dsvc, "_record", lambda *a, **k: (_ for _ in ()).throw(SystemExit("worker killed")))
    with pytest.raises(SystemExit):
        delivery_attempt(delivery.pk)
    monkeypatch.setattr(dsvc, "_record", real_record)
    rename_facility(hospital)
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED
    bodies = [t["body"] for t in sandbox.requests(idempotency_key=delivery.idempotency_key)]
    assert len(bodies) == 2 and bodies[0] == bodies[1] == delivery.payload.content


def test_connector_document_is_the_frozen_bytes_and_gone_after_the_purge(
        client, hospital, physician, published, django_capture_on_commit_callbacks):
    from assist_portal.notifications.services import notifications_purge

    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    payload = n.revisions.get().payload
    rename_facility(hospital)  # a rebuild would show the new name; the frozen document keeps the one sent

    doc = client.get(f"/api/v1/notifications/{n.uuid}/document", **AUTH)
    assert doc.status_code == 200 and doc["Content-Type"].startswith("application/fhir+json")
    assert doc.content == payload.content
    assert hashlib.sha256(doc.content).hexdigest() == payload.sha256 == doc["ETag"].strip('"')
    assert organization(doc.content)["name"] == "さくら総合病院"
    assert client.get(f"/api/v1/notifications/{n.uuid}/document.pdf", **AUTH).status_code == 200

    # An update: the endpoint follows the newest revision, again exactly as frozen.
    n.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        n, _, update = nsvc.notification_confirm(n, physician, dict(n.values, **{"patient.occupation": "会社員"}),
                                                 n.lock_version)
    newest = n.revisions.get(number=2).payload
    assert newest.pk != payload.pk and organization(newest.content)["name"] == "さくら総合医療センター"
    doc = client.get(f"/api/v1/notifications/{n.uuid}/document", **AUTH)
    assert doc.content == newest.content and doc["ETag"] == f'"{newest.sha256}"'

    Delivery.objects.filter(pk__in=[delivery.pk, update.pk]).update(status="accepted", receipt_id="HS-0000000001")
    assert notifications_purge(90, now=timezone.now() + timedelta(days=91)) == 1
    for row in Payload.objects.filter(pk__in=[payload.pk, newest.pk]):
        assert row.content is None and row.purged_at is not None and row.sha256  # the hash stays as evidence

    gone = client.get(f"/api/v1/notifications/{n.uuid}/document", **AUTH)
    assert gone.status_code == 410
    assert "保存期間" in gone.json()["detail"] and "消去" in gone.json()["detail"]
    assert gone.json()["purged_at"]
    pdf = client.get(f"/api/v1/notifications/{n.uuid}/document.pdf", **AUTH)
    assert pdf.status_code == 410 and "保存期間" in pdf.json()["detail"]
    assert not pdf.content.startswith(b"%PDF")


def test_status_and_print_pages_keep_working_for_unpurged_rows(client, hospital, physician, published, login,
                                                             django_capture_on_commit_callbacks):
    from django.urls import reverse

    published("2021-03")
    n, _ = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    login(client, physician)
    page = client.get(reverse("notifications:status", args=[n.uuid]))
    assert page.status_code == 200 and "第1版" in page.content.decode()
    status = client.get(reverse("notifications:status-json", args=[n.uuid])).json()
    assert (status["status"], status["revision"], status["kind"]) == ("queued", 1, "新規")
    assert client.get(reverse("notifications:print", args=[n.uuid])).status_code == 200


def test_raw_content_is_encrypted_at_rest(hospital, physician, published, django_capture_on_commit_callbacks):
    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM delivery_payload WHERE id = %s", [delivery.payload_id])
        raw = cursor.fetchone()[0]
    name = n.values["patient.name"]
    assert name and name not in raw and "Bundle" not in raw
    assert name in delivery.payload.content.decode()


@pytest.mark.integration
def test_delivery_writes_no_notification_rows_and_the_feed_still_moves(
        client, hospital, physician, published, sandbox, django_capture_on_commit_callbacks):
    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    before = Notification.objects.get(pk=n.pk).updated_at
    cursor = client.get("/api/v1/notifications", **AUTH).json()["results"][0]["updated_at"]
    with CaptureQueriesContext(connection) as queries:
        assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED
    touched = [q["sql"] for q in queries.captured_queries if "notifications_" in q["sql"]]
    assert touched == []  # not even a read: the outbox knows no notification
    assert Notification.objects.get(pk=n.pk).updated_at == before
    later = client.get("/api/v1/notifications", {"since": cursor}, **AUTH).json()["results"]
    assert [r["delivery"]["status"] for r in later] == ["accepted"]
    assert later[0]["updated_at"] > cursor
    assert client.get("/api/v1/notifications", {"since": later[0]["updated_at"]}, **AUTH).json()["results"] == []


def test_retention_clock_counts_the_last_delivery_change(hospital, physician, published,
                                                         django_capture_on_commit_callbacks):
    """The outbox no longer touches the notification: an acceptance long after the confirmation still restarts
    the retention clock (the connector must have had the time to fetch the accepted document)."""
    from assist_portal.notifications.services import notifications_purge

    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    long_ago = timezone.now() - timedelta(days=200)
    Notification.objects.filter(pk=n.pk).update(updated_at=long_ago)
    Delivery.objects.filter(pk=delivery.pk).update(status="accepted", updated_at=timezone.now() - timedelta(days=10))
    assert notifications_purge(90) == 0  # accepted ten days ago: kept
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=long_ago)
    assert notifications_purge(90) == 1
