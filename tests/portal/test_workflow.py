"""The thin path through the services and views: push → launch → draft → confirm → outbox."""
import json

import pytest
from django.urls import reverse

from assist_portal.delivery.models import Delivery
from assist_portal.notifications.models import LaunchToken, Notification
from tests.conftest import SHARED
from tests.portal.conftest import confirm_post, launch_path, launched_form

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"


def answer_key():
    path = SHARED / "emr-samples" / "answer-key.json"
    if not path.exists():
        pytest.skip("../shared is not beside the checkout")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def launched(client, physician, published, push, login):
    published("2021-03")
    response = push(client, PATIENT, "ss-mix2")
    assert response.status_code == 201, response.content
    login(client, physician)
    opened = launched_form(client, launch_path(response.json()["launch_url"]))
    notification = Notification.objects.get(patient_ref=PATIENT)
    assert opened.context["notification"].pk == notification.pk
    return notification


@pytest.mark.parametrize("fmt", ["ss-mix2", "fhir"])
def test_form_opens_prefilled_with_demographics_and_sources(client, physician, published, push, login, fmt):
    key = answer_key()[PATIENT]
    published("2021-03")
    response = push(client, PATIENT, fmt)
    assert response.status_code == 201
    login(client, physician)
    page = client.get(launch_path(response.json()["launch_url"]), follow=True)
    html = page.content.decode()
    assert page.status_code == 200
    for item in ("patient.name", "patient.birth_date", "patient.sex"):
        assert key[item] in html or key[item] in json.dumps(Notification.objects.get().values, ensure_ascii=False)
    notification = Notification.objects.get()
    assert notification.values["patient.name"] == key["patient.name"]
    assert notification.values["patient.birth_date"] == key["patient.birth_date"]
    assert notification.provenance["patient.name"].startswith(fmt)
    assert notification.values["report.facility_name"] == "さくら総合病院"
    assert notification.provenance["report.facility_name"] == "master:facility"
    assert "電子カルテ" in html and "医療機関マスタ" in html


def test_launch_url_is_single_use(client, physician, published, push, login):
    published("2021-03")
    url = launch_path(push(client, PATIENT).json()["launch_url"])
    login(client, physician)
    launched_form(client, url)
    again = client.get(url)
    assert again.status_code == 400
    assert "使用済み" in again.content.decode()


def test_launch_url_expires(client, physician, published, push, login):
    published("2021-03")
    url = launch_path(push(client, PATIENT).json()["launch_url"])
    from django.utils import timezone

    LaunchToken.objects.update(expires_at=timezone.now())
    login(client, physician)
    response = client.get(url)
    assert response.status_code == 400 and "有効期限" in response.content.decode()


def test_tampered_launch_url_is_refused(client, physician, published, push, login):
    published("2021-03")
    url = launch_path(push(client, PATIENT).json()["launch_url"])
    login(client, physician)
    tampered = url[:-5] + ("A" if url[-5] != "A" else "B") + url[-4:]
    assert client.get(tampered).status_code in (400, 404)
    assert Notification.objects.count() == 0


def form_post(notification, values, action="save"):
    data = {"action": action, "lock_version": str(notification.lock_version)}
    for key, value in values.items():
        if key == "tests":
            for i, row in enumerate(value):
                for field, v in row.items():
                    data[f"tests-{i}-{field}"] = v
        else:
            data[key] = value
    return data


def filled_values(notification):
    values = {k: v for k, v in notification.values.items() if not isinstance(v, (list, dict))}
    values.update({"report.diagnosis_class": "confirmed_patient",
                   "patient.residence_address": notification.values.get("patient.address", "東京都")})
    values["tests"] = notification.values.get("tests", [])
    if "risk.factors" in notification.values:
        values["risk.factors"] = notification.values["risk.factors"]
    return values


def test_clerk_saves_draft_but_cannot_confirm(client, launched, clerk, login):
    login(client, clerk)
    url = reverse("notifications:form", args=[launched.uuid])
    values = filled_values(launched)
    values["patient.occupation"] = "会社員"
    response = client.post(url, form_post(launched, values))
    assert response.status_code == 302
    launched.refresh_from_db()
    assert launched.values["patient.occupation"] == "会社員"
    assert launched.provenance["patient.occupation"] == f"typed:{clerk.username}"
    assert launched.provenance["patient.age"].startswith("computed:")  # derived, not typed by the clerk
    assert launched.provenance["patient.name"].startswith("ss-mix2:")  # unchanged values keep their source
    denied = confirm_post(client, launched, form_post(launched, values, "confirm"))
    assert denied.status_code == 403
    assert Delivery.objects.count() == 0


def test_concurrent_edit_is_never_silently_overwritten(client, launched, clerk, physician, login):
    url = reverse("notifications:form", args=[launched.uuid])
    stale = form_post(launched, {**filled_values(launched), "patient.occupation": "教員"})
    login(client, clerk)
    assert client.post(url, form_post(launched, {**filled_values(launched), "patient.occupation": "会社員"})).status_code == 302
    login(client, physician)
    response = client.post(url, stale)
    assert response.status_code == 409
    assert f"{clerk.display_name}さんが" in response.content.decode()  # who saved (and when), issue 9
    assert "教員" in response.content.decode()  # the typed input is still on the screen
    launched.refresh_from_db()
    assert launched.values["patient.occupation"] == "会社員"


def test_physician_confirm_writes_revision_and_outbox_in_one_transaction(client, launched, physician, login,
                                                                        django_capture_on_commit_callbacks):
    login(client, physician)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = confirm_post(client, launched, form_post(launched, filled_values(launched), "confirm"))
    assert response.status_code == 302, response.content.decode()[:3000]
    launched.refresh_from_db()
    assert launched.status == "confirmed" and launched.revision == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "queued"
    assert delivery.idempotency_key == f"{launched.uuid}:1:{delivery.payload.sha256[:16]}"
    assert launched.revisions.get().payload_id == delivery.payload_id  # the document, frozen in the same commit
    assert len(callbacks) == 1  # the task is enqueued only after commit


def test_confirm_with_errors_keeps_input_and_sends_nothing(client, launched, physician, login):
    login(client, physician)

    values = filled_values(launched)
    values["clinical.onset_date"] = "2099-01-01"
    values["report.diagnosis_class"] = ""
    response = confirm_post(client, launched, form_post(launched, values, "confirm"))
    assert response.status_code == 400
    assert Delivery.objects.count() == 0
    assert "2099-01-01" in response.content.decode()


def test_class_change_is_an_update_with_the_first_report_date_per_class(client, launched, physician, login,
                                                                        monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    """疑似症 → 確定 is an edit (Q&A 3, 7), never a duplicate; each class keeps its first report date (Q&A 8)."""
    from datetime import date

    from assist_portal.notifications import services

    login(client, physician)


    def confirm(cls, today):
        monkeypatch.setattr(services, "local_date", lambda: today)
        launched.refresh_from_db()
        values = filled_values(launched)
        values["report.diagnosis_class"] = cls
        if not launched.revision:
            values["report.report_date"] = today.isoformat()
        with django_capture_on_commit_callbacks(execute=False):
            r = confirm_post(client, launched, form_post(launched, values, "confirm"))
        assert r.status_code == 302, [line for line in r.content.decode().splitlines() if "error" in line][:10]
        launched.refresh_from_db()
        return launched.revisions.order_by("-number").first()

    first = confirm("suspected_patient", date(2021, 1, 9))
    assert first.values["report.report_date"] == "2021-01-09"
    second = confirm("confirmed_patient", date(2021, 1, 11))
    third = confirm("confirmed_patient", date(2021, 1, 15))
    assert [r.kind for r in (first, second, third)] == ["completed", "amended", "amended"]
    assert second.values["report.report_date"] == "2021-01-11"
    assert third.values["report.report_date"] == "2021-01-11"
    keys = list(Delivery.objects.order_by("id").values_list("idempotency_key", "payload__sha256"))
    assert keys == [(f"{launched.uuid}:{n}:{sha[:16]}", sha) for n, (_, sha) in enumerate(keys, start=1)]


def test_list_page_queries_do_not_grow_with_rows(client, physician, published, push, login,
                                                 django_assert_max_num_queries):
    published("2021-03")
    login(client, physician)
    for patient in ("1100000002", "1200000030", "1700000014", "1700000021"):
        client.get(launch_path(push(client, patient).json()["launch_url"]))
    with django_assert_max_num_queries(12):
        response = client.get(reverse("notifications:list") + "?state=")
    assert response.status_code == 200 and response.content.decode().count("<tr data-state=") == 4


def test_launch_url_carries_no_patient_data(client, physician, published, push):
    published("2021-03")
    url = push(client, PATIENT).json()["launch_url"]
    token = url.rstrip("/").rsplit("/", 1)[-1]
    jti, _timestamp, _signature = token.split(":")
    assert LaunchToken.objects.filter(jti=jti, patient_ref=PATIENT).exists()  # bound on the server side
    assert PATIENT not in token and "H0001" not in token


def test_suggestions_are_offered_not_filled_and_can_be_adopted(client, launched, physician, login):
    """The EMR suggests a diagnosis class; it is never filled as fact, the user adopts it with one click."""
    assert "report.diagnosis_class" not in launched.values
    assert launched.suggestions["report.diagnosis_class"]["value"] == "confirmed_patient"
    login(client, physician)
    url = reverse("notifications:form", args=[launched.uuid])
    html = client.get(url).content.decode()
    assert 'value="report.diagnosis_class|confirmed_patient"' in html
    data = form_post(launched, {k: v for k, v in filled_values(launched).items() if k != "report.diagnosis_class"})
    data.pop("action")
    data["accept"] = "report.diagnosis_class|confirmed_patient"
    assert client.post(url, data).status_code == 302
    launched.refresh_from_db()
    assert launched.values["report.diagnosis_class"] == "confirmed_patient"
    # recorded as adopted from its source (the extract's format), by whom — not as typed
    assert launched.provenance["report.diagnosis_class"] == f"adopted:{physician.username}:ss-mix2"
    assert "候補（SS-MIX2）を" in client.get(url).content.decode()
    # A forged code outside the value set is ignored.
    data = form_post(launched, {k: v for k, v in launched.values.items() if not isinstance(v, (list, dict))})
    data.pop("action")
    data["accept"] = "report.diagnosis_class|<script>"
    client.post(url, data)
    launched.refresh_from_db()
    assert launched.values["report.diagnosis_class"] == "confirmed_patient"


def _columns(row):
    return {f.attname: getattr(row, f.attname) for f in Notification._meta.concrete_fields}


@pytest.mark.parametrize("complete,handed", [(True, True), (True, False), (False, True)],
                         ids=["confirmed-after-hand-off", "confirmed", "refused"])
def test_a_confirmation_stores_every_field_it_changes(launched, physician, clerk, complete, handed):
    """A confirmation writes only the columns it changes (issue 13): whatever it changed in memory — values, the
    hand-off and return cleared, the revision, the status — is what the database holds afterwards, column by
    column; a refused confirmation keeps the typed values as the draft."""
    from django.utils import timezone

    from assist_portal.notifications.services import notification_confirm

    if handed:
        Notification.objects.filter(pk=launched.pk).update(  # handed to the physician earlier, then returned once
            review_requested_at=timezone.now(), review_requested_by=clerk, review_physician=physician,
            review_note="ご確認ください", returned_at=timezone.now(), returned_by=physician,
            returned_note="発症日を確認", follow_up_pending=True)
    launched.refresh_from_db()
    values = filled_values(launched)
    values["patient.occupation"] = "会社員"
    if not complete:
        values["report.diagnosis_class"] = ""
    row, evaluation, delivery = notification_confirm(launched, physician, values, launched.lock_version)
    assert (delivery is not None) is complete
    stored = Notification.objects.get(pk=launched.pk)
    assert _columns(stored) == _columns(row)
    assert stored.values["patient.occupation"] == "会社員"
    if complete:
        assert stored.status == "confirmed" and stored.revision == 1 and stored.review_physician_id is None
        assert stored.returned_note == "" and not stored.follow_up_pending
    else:
        assert stored.status == "draft" and stored.returned_note == "発症日を確認"
    assert {f.name: getattr(stored, f.attname) for f in Notification._meta.concrete_fields
            if f.name in ("review_note", "returned_note", "review_physician")} == (
        {"review_note": "", "returned_note": "", "review_physician": None} if complete else
        {"review_note": "ご確認ください", "returned_note": "発症日を確認", "review_physician": physician.pk})
