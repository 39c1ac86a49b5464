"""Issue 9 — Q&A 5, the minimum first: the physician confirms the priority items only as the first revision
(clearly marked), HER-SYS accepts it (its item-set rules), the case shows 続報待ち, and the rest later goes as an
update of the same record, accepted too."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.notifications.models import Notification
from tests.portal.conftest import confirm_post, open_from_emr
from tests.portal.test_workflow import form_post

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
PATIENT = "1100000002"


@pytest.fixture
def opened(client, physician, published):
    published("2021-03")
    return open_from_emr(client, physician, PATIENT, "fhir")


def minimum_values(n: Notification) -> dict:
    """What is known on day one: the EMR's items without the diagnosis date (not yet recorded), plus the class
    and the residence the physician sets."""
    values = {k: v for k, v in n.values.items() if not isinstance(v, (list, dict)) and k != "clinical.diagnosis_date"}
    values.update({"report.diagnosis_class": "confirmed_patient", "patient.residence_address": n.values["patient.address"],
                   "tests": n.values["tests"]})
    return values


def alerts(response) -> list[str]:
    return re.findall(r'role="alert">([^<]*)', response.content.decode())


def test_minimum_first_accepted_then_completed_as_an_update(client, opened, physician, sandbox,
                                                            django_capture_on_commit_callbacks):
    url = reverse("notifications:form", args=[opened.uuid])
    html = client.get(url).content.decode()
    assert "最小限の項目で第1報を確定（続報あり）" in html
    values = minimum_values(opened)
    # The full confirmation refuses: required items are missing (the diagnosis date).
    refused = client.post(url, form_post(opened, values, "confirm"))
    assert refused.status_code == 400 and not Delivery.objects.exists()
    # The minimum confirmation takes it.
    opened.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, form_post(opened, values, "confirm_minimum"))
    assert response.status_code == 302, alerts(response)
    opened.refresh_from_db()
    assert opened.status == "confirmed" and opened.follow_up_pending and opened.revision == 1
    first = opened.revisions.get()
    assert first.kind == "completed" and first.scope == "minimum"
    assert "clinical.diagnosis_date" not in first.values
    accepted = delivery_attempt(first.delivery_id)
    assert accepted.status == "accepted", accepted.last_error
    # Clearly marked: the form, the status page and the worklist say 続報待ち / 最小限.
    page = client.get(url).content.decode()
    assert 'id="follow-up-pending"' in page and "最小限の項目・続報あり" in page
    assert "最小限の項目で第1報を確定（続報あり）" not in page  # the button: only for the first report
    assert opened.patient_ref in client.get(reverse("notifications:list") + "?state=followup").content.decode()
    assert "最小限の項目" in client.get(reverse("notifications:status-json", args=[opened.uuid])).json()["kind"]

    # Later: the rest is known; the physician confirms the full set as an update of the same record.
    complete = {**values, "clinical.diagnosis_date": "2021-01-09"}
    with django_capture_on_commit_callbacks(execute=False):
        response = confirm_post(client, opened, form_post(opened, complete, "confirm"))
    assert response.status_code == 302, alerts(response)
    opened.refresh_from_db()
    assert not opened.follow_up_pending and opened.revision == 2
    update = opened.revisions.get(number=2)
    assert update.kind == "amended" and update.scope == "full"
    second = delivery_attempt(update.delivery_id)
    assert second.status == "accepted" and second.receipt_id == accepted.receipt_id
    stored = sandbox.received()["notifications"]
    assert len(stored) == 1 and len(stored[0]["revisions"]) == 2
    assert opened.patient_ref not in client.get(reverse("notifications:list") + "?state=followup").content.decode()


def test_minimum_needs_every_priority_item_and_a_physician(client, opened, physician, clerk, login):
    url = reverse("notifications:form", args=[opened.uuid])
    values = minimum_values(opened)
    values["patient.residence_address"] = ""
    values["tests"] = [{**values["tests"][0], "result": ""}]
    response = client.post(url, form_post(opened, values, "confirm_minimum"))
    assert response.status_code == 400
    text = " ".join(alerts(response))
    assert "当該者所在地" in text and "検査結果" in text and "下書きとして保存" in text
    assert not Delivery.objects.exists()
    opened.refresh_from_db()
    assert opened.status == "draft" and not opened.follow_up_pending
    login(client, clerk)
    denied = client.post(url, form_post(opened, minimum_values(opened), "confirm_minimum"))
    assert denied.status_code == 403 and not Delivery.objects.exists()


def test_the_destination_item_set_is_part_of_the_minimum(opened):
    """What the sandbox requires of a first revision (vocabulary.item_set) is checked too, even where a
    definition would not flag it as a priority item."""
    from datetime import date

    from assist_portal.notifications.minimum import minimum_missing
    from formengine import evaluate

    definition = opened.definition
    defn = {**definition.definition,
            "items": [{**i, "priority": False} if i["id"] == "patient.sex" else i
                      for i in definition.definition["items"]]}
    definition.definition = defn
    values = {k: v for k, v in minimum_values(opened).items() if k != "patient.sex"}
    evaluation = evaluate(defn, values, today=date(2021, 1, 10))
    assert "patient.sex" not in evaluation.missing_priority
    assert minimum_missing(definition, evaluation) == ["性別"]


def test_a_minimum_first_report_needs_a_recent_second_factor(client, opened, physician, settings,
                                                            django_capture_on_commit_callbacks):
    """Like the review step's final click (issue 8): once OTP_RECHECK_MINUTES have passed since the second factor
    was proven, the minimum confirmation asks for the code again, confirms nothing without it and keeps the input."""
    import time

    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.portal.conftest import current_totp

    settings.OTP_RECHECK_MINUTES = 10
    session = client.session
    session["otp_verified_at"] = time.time() - 11 * 60
    session.save()
    url = reverse("notifications:form", args=[opened.uuid])
    values = minimum_values(opened)
    asked = client.post(url, {**form_post(opened, values, "confirm_minimum"), "patient.occupation": "会社員"})
    html = asked.content.decode()
    assert asked.status_code == 400 and "ワンタイムパスワードをもう一度入力" in html and 'id="minimum-otp"' in html
    assert 'value="会社員"' in html  # what was typed is still on the page
    opened.refresh_from_db()
    assert opened.status == "draft" and not Delivery.objects.exists()
    wrong = client.post(url, {**form_post(opened, values, "confirm_minimum"), "otp_token": "000000"
                              if current_totp(TOTPDevice.objects.get(user=physician)) != "000000" else "111111"})
    assert wrong.status_code == 400 and not Delivery.objects.exists()
    TOTPDevice.objects.get(user=physician).throttle_reset()  # django-otp throttles after a wrong code
    with django_capture_on_commit_callbacks(execute=False):
        done = client.post(url, {**form_post(opened, values, "confirm_minimum"),
                                 "otp_token": current_totp(TOTPDevice.objects.get(user=physician))})
    assert done.status_code == 302, alerts(done)
    opened.refresh_from_db()
    assert opened.status == "confirmed" and opened.follow_up_pending
