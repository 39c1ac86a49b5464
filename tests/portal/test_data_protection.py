"""XSS-safe output, no patient data in task arguments or the audit log, export, retention purge."""
import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Delivery
from assist_portal.notifications.models import Notification
from assist_portal.notifications.services import notifications_purge
from tests.portal.conftest import confirm_post, launch_path
from tests.portal.test_workflow import filled_values, form_post

pytestmark = [pytest.mark.django_db, pytest.mark.security]
HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


def test_hostile_values_are_escaped_everywhere(client, physician, published, push, login):
    published("2021-03")
    url = push(client, "1100000002").json()["launch_url"]
    login(client, physician)
    client.get(launch_path(url))
    n = Notification.objects.get()
    values = filled_values(n)
    values["patient.occupation"] = HOSTILE
    values["notes.remarks"] = HOSTILE
    assert client.post(reverse("notifications:form", args=[n.uuid]), form_post(n, values)).status_code == 302
    for name in ("form", "print"):
        html = client.get(reverse(f"notifications:{name}", args=[n.uuid])).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
    n.refresh_from_db()
    assert n.values["patient.occupation"] == HOSTILE  # kept exactly as typed: escaping is at output


def test_tasks_carry_ids_only_and_audit_holds_no_patient_data(client, physician, published, push, login,
                                                              django_capture_on_commit_callbacks, monkeypatch):
    from assist_portal import broker

    sent = []
    monkeypatch.setattr(broker, "task_publish", lambda task, args, **kw: sent.append((task.name, args, kw)))
    published("2021-03")
    url = push(client, "1100000002").json()["launch_url"]
    login(client, physician)
    client.get(launch_path(url))
    n = Notification.objects.get()
    assert client.get(reverse("notifications:form", args=[n.uuid])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        confirm_post(client, n, form_post(n, filled_values(n), "confirm"))
    assert sent == [("assist_portal.delivery.tasks.deliver", [Delivery.objects.get().pk], {"countdown": None})]
    n.refresh_from_db()
    dump = json.dumps([e.detail for e in AuditEvent.objects.all()] +
                      [[e.object_id, e.object_type] for e in AuditEvent.objects.all()], ensure_ascii=False)
    for value in (n.values["patient.name"], n.values["patient.birth_date"], n.values.get("patient.address", "@@")):
        assert value not in dump
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"extract.receive", "launch.consume", "notification.view", "notification.confirm"} <= actions


def test_audit_log_export_csv(client, central_admin, login, hospital):
    AuditEvent.objects.create(action="notification.view", hospital_code="H0001", object_id="abc")
    login(client, central_admin)
    response = client.get(reverse("central:audit-export"), {"hospital": "H0001"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert any(r["action"] == "notification.view" and r["object_id"] == "abc" for r in rows)
    assert all(r["hospital_code"] == "H0001" for r in rows)
    assert AuditEvent.objects.filter(action="audit.export").exists()


def test_purge_erases_patient_values_only_when_delivered_and_old(hospital, physician, published,
                                                                django_capture_on_commit_callbacks):
    from assist_portal.notifications import services as s
    from tests.conftest import DEMO_SAMPLES

    published("2021-03")
    bundle = json.loads((DEMO_SAMPLES / "fhir" / "1100000002.json").read_text())
    extract = s.extract_receive(hospital, s.ExtractPayload(format="fhir", patient_ref="1100000002", data=bundle))
    with django_capture_on_commit_callbacks(execute=False):
        n = s.notification_open_from_extract(extract, physician)
        values = dict(n.values, **{"report.diagnosis_class": "confirmed_patient"})
        n, _, delivery = s.notification_confirm(n, physician, values, n.lock_version)
    old = timezone.now() + timedelta(days=91)
    assert notifications_purge(90, now=old) == 0  # not accepted yet: kept
    Delivery.objects.filter(pk=delivery.pk).update(status="accepted", receipt_id="HS-0000000001")
    assert notifications_purge(90, now=timezone.now()) == 0  # too recent: kept
    assert notifications_purge(90, now=old) == 1
    n.refresh_from_db()
    assert n.values == {} and n.revisions.get().values == {}
    assert Delivery.objects.get().receipt_id == "HS-0000000001"
    assert AuditEvent.objects.filter(action="notification.purge").exists()
