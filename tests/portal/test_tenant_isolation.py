"""A user of hospital A can never read, guess or change hospital B's data."""
import json

import pytest
from django.urls import reverse

from assist_portal.notifications.models import Notification
from tests.portal.conftest import confirm_post, launch_path

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.fixture
def b_notification(client, make_user, other_hospital, published, push, login):
    published("2021-03")
    other_hospital.local_codes = {}
    other_hospital.save()
    response = push(client, "1100000002", "fhir", key="key-h0002")
    assert response.status_code == 201
    b_doctor = make_user("b_doctor", "physician", other_hospital)
    login(client, b_doctor)
    client.get(launch_path(response.json()["launch_url"]))
    client.logout()
    return Notification.objects.get(hospital=other_hospital)


def test_other_hospitals_notification_is_invisible(client, physician, b_notification, login):
    login(client, physician)
    for name in ("form", "status", "status-json", "print"):
        assert client.get(reverse(f"notifications:{name}", args=[b_notification.uuid])).status_code == 404
    listing = client.get(reverse("notifications:list")).content.decode()
    assert str(b_notification.uuid) not in listing and b_notification.patient_ref not in listing


def test_other_hospitals_notification_cannot_be_changed_or_confirmed(client, physician, b_notification, login):
    login(client, physician)
    url = reverse("notifications:form", args=[b_notification.uuid])
    for action in ("save", "confirm", "withdraw"):
        response = client.post(url, {"action": action, "lock_version": b_notification.lock_version,
                                      "patient.name": "改ざん"})
        assert response.status_code == 404
    b_notification.refresh_from_db()
    assert b_notification.values.get("patient.name") != "改ざん"
    assert b_notification.status == "draft"


def test_launch_url_of_other_hospital_is_refused(client, physician, other_hospital, published, push, login):
    published("2021-03")
    response = push(client, "1100000002", "fhir", key="key-h0002")
    login(client, physician)
    opened = client.get(launch_path(response.json()["launch_url"]))
    assert opened.status_code == 403
    assert Notification.objects.count() == 0


def test_connector_key_only_sees_its_own_hospital(client, hospital, b_notification):
    feed = client.get("/api/v1/notifications", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert feed.status_code == 200 and feed.json()["results"] == []
    doc = client.get(f"/api/v1/notifications/{b_notification.uuid}/document", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert doc.status_code == 404


def test_central_admin_sees_no_patient_data(client, central_admin, b_notification, login):
    login(client, central_admin)
    assert client.get(reverse("notifications:form", args=[b_notification.uuid])).status_code in (403, 404)
    page = client.get(reverse("central:deliveries")).content.decode()
    assert b_notification.values.get("patient.name", "@@") not in page


def test_patient_values_are_encrypted_at_rest(b_notification):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT values FROM notifications_notification WHERE id = %s", [b_notification.pk])
        raw = cursor.fetchone()[0]
    name = b_notification.values["patient.name"]
    assert name and name not in raw and json.dumps(name)[1:-1] not in raw


def test_connector_pulls_pdf_and_document_of_its_own_hospital_only(client, hospital, physician, published, push,
                                                                   login, b_notification,
                                                                   django_capture_on_commit_callbacks):
    from tests.portal.test_workflow import filled_values, form_post

    response = push(client, "1100000002", "fhir")
    login(client, physician)
    client.get(launch_path(response.json()["launch_url"]))
    own = Notification.objects.get(hospital=hospital)
    with django_capture_on_commit_callbacks(execute=False):
        confirm_post(client, own, form_post(own, filled_values(own), "confirm"))
    client.logout()
    auth = {"HTTP_AUTHORIZATION": "Api-Key key-h0001"}
    pdf = client.get(f"/api/v1/notifications/{own.uuid}/document.pdf", **auth)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    doc = client.get(f"/api/v1/notifications/{own.uuid}/document", **auth)
    assert doc.status_code == 200 and doc.json()["resourceType"] == "Bundle"
    feed = client.get("/api/v1/notifications", **auth).json()["results"]
    assert [r["id"] for r in feed] == [str(own.uuid)]
    assert client.get(f"/api/v1/notifications/{b_notification.uuid}/document.pdf", **auth).status_code == 404
