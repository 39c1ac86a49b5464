"""Regression tests for the defects a code review found (each failed before its fix)."""
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.notifications import services as nsvc
from assist_portal.notifications.models import Notification
from tests.conftest import DEMO_SAMPLES
from tests.portal.conftest import confirm_post, launch_path
from tests.portal.test_workflow import filled_values, form_post

pytestmark = [pytest.mark.django_db]
PATIENT = "1100000002"


def confirm_new(hospital, physician, capture, extra=None):
    bundle = json.loads((DEMO_SAMPLES / "fhir" / f"{PATIENT}.json").read_text())
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=PATIENT, data=bundle))
    with capture(execute=False):
        n = nsvc.notification_open_from_extract(extract, physician)
        values = dict(n.values, **{"report.diagnosis_class": "confirmed_patient"}, **(extra or {}))
        n, _, delivery = nsvc.notification_confirm(n, physician, values, n.lock_version)
    return n, delivery


def test_real_certificates_are_never_replaced_by_dev_ones(tmp_path, settings):
    from assist_portal.delivery.services import hersys_client
    from hersys_client.devpki import ensure_dev_pki

    source = ensure_dev_pki(tmp_path / "src")
    prod = tmp_path / "prod"
    prod.mkdir()
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (prod / name).write_bytes((source.dir / name).read_bytes())
    before = {p.name: p.read_bytes() for p in prod.iterdir()}
    settings.HERSYS_PKI_DIR = prod
    settings.HERSYS_API_URL = "https://hersys.example.go.jp"
    hersys_client.cache_clear()
    try:
        hersys_client()
        assert {p.name: p.read_bytes() for p in prod.iterdir()} == before
        settings.HERSYS_PKI_DIR = tmp_path / "empty"
        hersys_client.cache_clear()
        with pytest.raises(RuntimeError, match="証明書"):
            hersys_client()
        assert not (tmp_path / "empty").exists()
    finally:
        hersys_client.cache_clear()


@pytest.mark.integration
def test_withdrawal_never_overtakes_the_first_send(hospital, physician, published, sandbox,
                                                   django_capture_on_commit_callbacks):
    published("2021-03")
    n, first = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        n, withdrawal = nsvc.notification_withdraw(n, physician, n.lock_version)
    assert delivery_attempt(withdrawal.pk) is None  # postponed: revision 1 is not in HER-SYS yet
    assert Delivery.objects.get(pk=withdrawal.pk).status == "queued"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert delivery_attempt(first.pk).status == "accepted"
    assert len(callbacks) == 1  # accepting revision 1 enqueues the withdrawal
    assert delivery_attempt(withdrawal.pk).status == "accepted"
    assert sandbox.received()["notifications"][0]["status"] == "withdrawn"


def test_withdrawal_sends_the_last_confirmed_values(hospital, physician, clerk, published,
                                                    django_capture_on_commit_callbacks):
    published("2021-03")
    n, _ = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    confirmed_name = n.values["patient.name"]
    n, _ = nsvc.notification_save(n, clerk, dict(n.values, **{"patient.name": "事務　変更"}), n.lock_version)
    with django_capture_on_commit_callbacks(execute=False):
        n, withdrawal = nsvc.notification_withdraw(n, physician, n.lock_version)
    revision = n.revisions.get(number=withdrawal.sequence)
    assert revision.kind == "stopped" and revision.values["patient.name"] == confirmed_name
    sent = json.loads(withdrawal.payload.content)  # the frozen bytes every attempt will send
    patient = next(e["resource"] for e in sent["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["name"][0]["text"] == confirmed_name


def test_emr_button_after_confirmation_opens_the_same_notification(client, hospital, physician, published, push,
                                                                   login, django_capture_on_commit_callbacks):
    published("2021-03")
    login(client, physician)
    client.get(launch_path(push(client, PATIENT).json()["launch_url"]))
    n = Notification.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        confirm_post(client, n, form_post(n, filled_values(n), "confirm"))
    # Q&A 7: the button asks whether this is the same case, preselecting what CASE_REOPEN_DAYS suggests.
    url = launch_path(push(client, PATIENT).json()["launch_url"])
    asked = client.get(url).content.decode()
    assert 'value="same" id="case-same" checked' in asked
    again = client.post(url, {"case": "same", "suggested": "same"})
    assert again["Location"].endswith(f"/notifications/{n.uuid}/")
    assert Notification.objects.count() == 1
    # Months later (e.g. a reinfection) a new case is preselected, and the button starts a new notification.
    Notification.objects.filter(pk=n.pk).update(created_at=timezone.now() - timezone.timedelta(days=120))
    url = launch_path(push(client, PATIENT).json()["launch_url"])
    assert 'value="new" id="case-new" checked' in client.get(url).content.decode()
    later = client.post(url, {"case": "new", "suggested": "new"})
    assert not later["Location"].endswith(f"/notifications/{n.uuid}/")
    assert Notification.objects.count() == 2


def test_refused_cross_hospital_launch_is_audited(client, make_user, other_hospital, published, push, login,
                                                  hospital):
    published("2021-03")
    url = push(client, PATIENT).json()["launch_url"]
    login(client, make_user("b_doc", "physician", other_hospital))
    assert client.get(launch_path(url)).status_code == 403
    assert AuditEvent.objects.filter(action="launch.denied", actor_username="b_doc").count() == 1


def test_only_one_draft_per_patient_even_under_a_race(hospital, physician, published):
    from django.db import IntegrityError, transaction

    definition = published("2021-03")
    n1 = Notification.objects.create(hospital=hospital, patient_ref="P9", definition=definition, values={},
                                     provenance={})
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(hospital=hospital, patient_ref="P9", definition_id=n1.definition_id,
                                    values={}, provenance={})


def test_pdf_treats_values_as_text_not_markup(client, hospital, physician, published,
                                              django_capture_on_commit_callbacks):
    published("2021-03")
    n, _ = confirm_new(hospital, physician, django_capture_on_commit_callbacks,
                       {"patient.occupation": '<b>山田 <a href="x">link</a> <img src="/etc/passwd"/>'})
    r = client.get(f"/api/v1/notifications/{n.uuid}/document.pdf", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="api.pdf").exists()


@pytest.mark.integration
def test_feed_reports_acceptance_after_the_cursor(client, hospital, physician, published, sandbox,
                                                  django_capture_on_commit_callbacks):
    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    auth = {"HTTP_AUTHORIZATION": "Api-Key key-h0001"}
    first = client.get("/api/v1/notifications", **auth).json()["results"]
    assert first[0]["delivery"]["status"] == "queued"
    cursor = first[0]["updated_at"]
    delivery_attempt(delivery.pk)
    later = client.get("/api/v1/notifications", {"since": cursor}, **auth).json()["results"]
    assert later and later[0]["delivery"]["status"] == "accepted" and later[0]["delivery"]["receipt_id"]
    assert client.get("/api/v1/notifications", {"since": "2024-13-45T00:00:00"}, **auth).status_code == 400


def test_purge_runs_once_per_notification(hospital, physician, published, django_capture_on_commit_callbacks):
    from datetime import timedelta

    published("2021-03")
    n, delivery = confirm_new(hospital, physician, django_capture_on_commit_callbacks)
    Delivery.objects.filter(pk=delivery.pk).update(status="accepted")
    later = timezone.now() + timedelta(days=100)
    assert nsvc.notifications_purge(90, now=later) == 1
    assert nsvc.notifications_purge(90, now=later) == 0
    assert AuditEvent.objects.filter(action="notification.purge").count() == 1


def test_refused_confirmation_is_audited(client, hospital, physician, published, push, login):
    published("2021-03")
    login(client, physician)
    client.get(launch_path(push(client, PATIENT).json()["launch_url"]))
    n = Notification.objects.get()
    values = filled_values(n)
    values["report.diagnosis_class"] = ""
    before = AuditEvent.objects.filter(action="notification.save").count()
    assert confirm_post(client, n, form_post(n, values, "confirm")).status_code == 400
    assert AuditEvent.objects.filter(action="notification.save").count() == before + 1


def test_hostile_admin_and_api_input_gets_400_not_500(client, hospital, central_admin, login, published):
    deep = "[" * 100000 + "]" * 100000
    r = client.post("/api/v1/extracts", data=deep, content_type="application/json",
                    HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert r.status_code == 400 and "入れ子" in r.json()["detail"]
    published("2021-03")
    login(client, central_admin)
    client.post(reverse("central:new"), {"source": "builtin", "version": "2022-09"})
    from assist_portal.formdefs.models import FormDefinition

    draft = FormDefinition.objects.get(status="draft")
    for data in ({"scope": "subset", "hospitals": ["abc"]}, {"scope": "all", "effective_from": "2024-13-45T00:00"}):
        assert client.post(reverse("central:publish", args=[draft.pk]), data).status_code == 302
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_audit_csv_neutralises_formulas(client, central_admin, login):
    AuditEvent.objects.create(action="login.failure", object_id="=HYPERLINK(\"http://x\")", user_agent="+cmd")
    login(client, central_admin)
    body = b"".join(client.get(reverse("central:audit-export")).streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK" in body and "'+cmd" in body


def test_user_admin_ids_are_checked(client, central_admin, login):
    login(client, central_admin)
    assert client.post(reverse("central:users"), {"unlock": "abc"}).status_code == 404
    assert client.post(reverse("central:users"), {"reset": "1 OR 1=1"}).status_code == 404
