"""The effort report per hospital and month, from real use and without patient values."""
from __future__ import annotations

import pytest
from django.urls import reverse

from assist_portal.notifications.effort import effort_report
from assist_portal.notifications.models import Notification
from tests.portal.conftest import confirm_post, launch_path
from tests.portal.test_form_page import post_values

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"


def test_effort_per_hospital_and_month(client, hospital, clerk, physician, published, push, login):
    published("2021-03")
    response = push(client, PATIENT, "ss-mix2")
    login(client, clerk)
    client.get(launch_path(response.json()["launch_url"]))
    n = Notification.objects.get(patient_ref=PATIENT)
    url = reverse("notifications:form", args=[n.uuid])
    client.post(url, post_values(n, **{"patient.occupation": "会社員", "patient.residence_address": "東京都千代田区"}))
    n.refresh_from_db()
    login(client, physician)
    data = post_values(n, action="confirm", **{"report.diagnosis_class": "confirmed_patient"})
    assert confirm_post(client, n, data).status_code == 302
    n.refresh_from_db()
    assert n.status == "confirmed"

    [row] = effort_report()
    assert row["hospital_code"] == "H0001" and row["notifications"] == 1
    assert row["adopted_pct"] > 0  # the diagnosis class the EMR suggested
    assert row["prefilled_pct"] > row["typed_pct"] > 0
    assert round(row["prefilled_pct"] + row["adopted_pct"] + row["typed_pct"]) == 100
    assert row["median_minutes_to_confirm"] >= 0 and row["rejections"] == 0
    assert effort_report(hospital=hospital) == [row]


def test_the_central_page_shows_no_patient_values(client, central_admin, clerk, physician, hospital, published, push,
                                                  login):
    test_effort_per_hospital_and_month(client, hospital, clerk, physician, published, push, login)
    login(client, central_admin)
    html = client.get(reverse("central:effort")).content.decode()
    assert "H0001" in html and 'id="effort-table"' in html
    for value in ("高橋", "タカハシ", "1942", "会社員", "4600008", "460-0008", PATIENT):
        assert value not in html
    login(client, clerk)
    assert client.get(reverse("central:effort")).status_code in (302, 403)
