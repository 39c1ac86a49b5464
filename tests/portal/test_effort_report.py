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
    # The physician adopts the diagnosis class the EMR suggested with 「採用」, then confirms through the review.
    assert client.post(url, post_values(n, accept="report.diagnosis_class|confirmed_patient")).status_code == 302
    n.refresh_from_db()
    assert confirm_post(client, n, post_values(n, action="confirm")).status_code == 302
    n.refresh_from_db()
    assert n.status == "confirmed"

    [row] = effort_report()
    assert row["hospital_code"] == "H0001" and row["notifications"] == 1
    assert row["adopted_items"] == 1 and row["adopted_pct"] > 0  # the diagnosis class the EMR suggested
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


def _confirmed(client, login, push, clerk, physician, patient: str, *, adopt: bool, key: str = "key-h0001"):
    """A notification of `patient` launched by the clerk and confirmed by the physician; the suggested diagnosis
    class adopted with 「採用」 (adopt) or chosen by hand from the list, and 入院 chosen by hand equal to the EMR's
    suggestion (いいえ)."""
    response = push(client, patient, "fhir", key=key)
    assert response.status_code == 201, response.content
    login(client, clerk)
    client.get(launch_path(response.json()["launch_url"]))
    n = Notification.objects.get(patient_ref=patient)
    url = reverse("notifications:form", args=[n.uuid])
    assert client.post(url, post_values(n, **{"care.hospitalized": "no"})).status_code == 302
    n.refresh_from_db()
    login(client, physician)
    if adopt:
        assert client.post(url, post_values(n, accept="report.diagnosis_class|confirmed_patient")).status_code == 302
        n.refresh_from_db()
        page = client.get(url).content.decode()
        assert "候補から採用" in page and "採用済み" in page
        assert confirm_post(client, n, post_values(n, action="confirm")).status_code == 302
    else:
        data = post_values(n, action="confirm", **{"report.diagnosis_class": "confirmed_patient"})
        assert confirm_post(client, n, data).status_code == 302
    n.refresh_from_db()
    assert n.status == "confirmed"
    return n


def test_adopted_counts_exactly_the_suggestions_chosen_with_the_button(client, hospital, clerk, physician, published,
                                                                        push, login):
    """Provenance records the adoption (`adopted:<user>`); a value typed by hand that equals the suggestion is typed."""
    published("2021-03")
    n = _confirmed(client, login, push, clerk, physician, "2200000007", adopt=True)
    assert n.suggestions["care.hospitalized"]["value"] == "no" and n.values["care.hospitalized"] == "no"
    assert n.provenance["report.diagnosis_class"].startswith(f"adopted:{physician.username}:")
    assert n.provenance["care.hospitalized"] == f"typed:{clerk.username}"  # same value as suggested, but typed
    [row] = effort_report()
    assert row["adopted_items"] == 1
    typed = sum(1 for s in n.provenance.values() if s.startswith("typed:"))
    assert row["typed_items"] == typed and row["items"] == len(n.provenance)
    assert row["prefilled_items"] == row["items"] - typed - 1
    # Changing an adopted value by hand makes it typed again.
    url = reverse("notifications:form", args=[n.uuid])
    assert client.post(url, post_values(n, **{"report.diagnosis_class": "suspected_patient"})).status_code == 302
    n.refresh_from_db()
    assert n.provenance["report.diagnosis_class"] == f"typed:{physician.username}"


def test_choosing_the_suggested_value_by_hand_is_not_counted_as_adopted(client, hospital, clerk, physician,
                                                                         published, push, login):
    published("2021-03")
    n = _confirmed(client, login, push, clerk, physician, "2200000007", adopt=False)
    assert n.provenance["report.diagnosis_class"] == f"typed:{physician.username}"
    [row] = effort_report()
    assert row["adopted_items"] == 0 and row["adopted_pct"] == 0.0


def test_a_hospital_administrator_sees_the_effort_of_their_own_hospital_only(
        client, hospital, other_hospital, clerk, physician, hospital_admin, make_user, published, push, login):
    published("2021-03")
    _confirmed(client, login, push, clerk, physician, "2200000007", adopt=True)
    other_clerk = make_user("clerk_b", "clerk", other_hospital)
    other_physician = make_user("dr_b", "physician", other_hospital)
    _confirmed(client, login, push, other_clerk, other_physician, "1100000002", adopt=False, key="key-h0002")
    ours, theirs = effort_report(hospital=hospital), effort_report(hospital=other_hospital)
    assert len(ours) == len(theirs) == 1 and ours[0]["adopted_items"] == 1 and theirs[0]["adopted_items"] == 0

    login(client, hospital_admin)
    page = client.get(reverse("hospitaladmin:effort"))
    assert page.status_code == 200
    html = page.content.decode()
    [row] = ours
    assert 'data-hospital="H0001"' in html and 'data-hospital="H0002"' not in html
    assert "みなと市民病院" not in html and "入力の手間（さくら総合病院・月ごと）" in html
    assert f"<td>{row['adopted_pct']}%</td>" in html and f"<td>{row['prefilled_pct']}%</td>" in html
    # No patient values of either hospital.
    for n in Notification.objects.all():
        for value in (n.values.get("patient.name"), n.values.get("patient.birth_date"), n.patient_ref):
            assert value and value not in html
    # The other hospital's administrator sees theirs, not ours; staff cannot open the page.
    other_admin = make_user("hadmin_b", "hospital_admin", other_hospital)
    login(client, other_admin)
    html = client.get(reverse("hospitaladmin:effort")).content.decode()
    assert 'data-hospital="H0002"' in html and 'data-hospital="H0001"' not in html
    login(client, clerk)
    assert client.get(reverse("hospitaladmin:effort")).status_code == 403
