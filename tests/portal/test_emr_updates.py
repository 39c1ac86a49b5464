"""Issue 9 — EMR updates: a newer extract (pushed by the connector through the API, or brought by a relaunch) is
compared with the notification; each difference is a pending change a person accepts or dismisses on the form page.
Nothing is applied by itself; typed values stay; a dismissed change stays dismissed; a positive result on a 疑似症
case offers the class change, and accepting it on a confirmed notification becomes an amendment HER-SYS accepts as
an update of the same record with the first report date of each class (Q&A 3, 8)."""
from __future__ import annotations

import copy
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent
from assist_portal.notifications.models import EmrChange, Notification
from tests.conftest import DEMO_SAMPLES
from tests.portal.conftest import confirm_post, launch_path, launched_form
from tests.portal.test_workflow import form_post

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"


# ---- newer extracts, as a hospital would produce them (copies of the samples, modified) --------------------------

def push_data(client, fmt: str, data, patient: str = PATIENT):
    """The connector's default push (items only) of an extract read from anywhere (a modified copy)."""
    from connector.extract import items_body, run_mapping

    codes = json.loads((DEMO_SAMPLES / "local-codes.json").read_text(encoding="utf-8"))
    body = items_body(patient, fmt, data, run_mapping(fmt, data, patient, codes, None))
    response = client.post("/api/v1/extracts", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert response.status_code == 201, response.content
    return response


def bundle() -> dict:
    return json.loads((DEMO_SAMPLES / "fhir" / f"{PATIENT}.json").read_text(encoding="utf-8"))


def resource(b: dict, rid: str) -> dict:
    return next(e["resource"] for e in b["entry"] if e["resource"].get("id") == rid)


def newer_bundle(b: dict) -> dict:
    """Birth date corrected, the first PCR cancelled, a second positive PCR (2021-01-10)."""
    b = copy.deepcopy(b)
    resource(b, PATIENT)["birthDate"] = "1942-07-22"
    resource(b, PATIENT)["telecom"][0]["value"] = "092-0000-1111"
    resource(b, "o1")["status"] = "cancelled"
    s2, o2 = copy.deepcopy(resource(b, "s1")), copy.deepcopy(resource(b, "o1"))
    s2.update(id="s2", collection={"collectedDateTime": "2021-01-10"})
    o2.update(id="o2", status="final", specimen={"reference": "Specimen/s2"}, effectiveDateTime="2021-01-10",
              issued="2021-01-11T10:00:00+09:00")
    b["entry"] += [{"resource": s2}, {"resource": o2}]
    return b


def suspected_bundle() -> dict:
    """A 疑似症 case: a suspected diagnosis (U07.2) and a PCR still pending."""
    b = bundle()
    o1 = resource(b, "o1")
    o1["valueCodeableConcept"] = {"text": "判定中"}
    o1.pop("interpretation", None)
    resource(b, "c1")["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "U07.2"}],
                                 "text": "COVID-19疑い"}
    return b


def newer_ssmix2(tmp_path: Path) -> Path:
    """A copy of the patient's SS-MIX2 folder with a newer patient-info message (birth date corrected), a new
    positive PCR order (O00002) and the first PCR cancelled (a condition-flag-0 file for O00001)."""
    folder = tmp_path / PATIENT
    shutil.copytree(DEMO_SAMPLES / "ss-mix2" / PATIENT[:3] / PATIENT[3:6] / PATIENT, folder)

    def read(p: Path) -> str:
        return p.read_bytes().decode("iso2022_jp")

    def write(p: Path, text: str) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode("iso2022_jp"))

    adt = next((folder / "-" / "ADT-00").iterdir())
    write(folder / "-" / "ADT-00" / f"{PATIENT}_-_ADT-00_-_20210111083000000_01_1",
          read(adt).replace("20210108083000", "20210111083000").replace("|19420721|", "|19420722|"))
    oml = next((folder / "20210108" / "OML-11").iterdir())
    text = read(oml)
    write(folder / "20210110" / "OML-11" / f"{PATIENT}_20210110_OML-11_O00002_20210111160100000_01_1",
          text.replace("O00001", "O00002").replace("20210108100500", "20210110100500")
          .replace("20210109160100", "20210111160100"))
    write(oml.parent / f"{PATIENT}_20210108_OML-11_O00001_20210112090000000_01_0", text)
    return folder


def open_from(client, fmt: str, data, user, login) -> Notification:
    response = push_data(client, fmt, data)
    login(client, user)
    launched_form(client, launch_path(response.json()["launch_url"]))
    return Notification.objects.get(patient_ref=PATIENT)


def form_url(n: Notification) -> str:
    return reverse("notifications:form", args=[n.uuid])


def scalar_values(n: Notification) -> dict:
    values = {k: v for k, v in n.values.items() if not isinstance(v, dict)}
    return values


def decide(client, n: Notification, emr: str, **typed):
    """What the page posts when a 「反映」/「反映しない」 button is pressed: the form as shown plus the choice."""
    n.refresh_from_db()
    data = form_post(n, {**scalar_values(n), **typed})
    data.pop("action")
    data["emr"] = emr
    data["emr_shown"] = [str(c.pk) for c in EmrChange.objects.filter(notification=n, status="pending")]
    return client.post(form_url(n), data)


def page_errors(response) -> list[str]:
    import re

    html = response.content.decode()
    return re.findall(r'role="alert">([^<]*)', html) + re.findall(r'<a href="#f-[^"]*">([^<]*)</a>', html)


def pending(n: Notification) -> dict[str, EmrChange]:
    out = {}
    for c in EmrChange.objects.filter(notification=n, status="pending"):
        out[c.item_id if c.kind in ("value", "class_change") else f"{c.kind}"] = c
    return out


# ---- the tests ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["fhir", "ss-mix2"])
def test_newer_extract_is_offered_as_changes_never_applied_and_typed_values_stay(
        client, physician, clerk, published, login, tmp_path, fmt):
    from connector.extract import read_source

    published("2021-03")
    original = bundle() if fmt == "fhir" else read_source(
        "ss-mix2", DEMO_SAMPLES / "ss-mix2" / PATIENT[:3] / PATIENT[3:6] / PATIENT)
    n = open_from(client, fmt, original, clerk, login)
    assert n.values["patient.birth_date"] == "1942-07-21"
    assert [t["collection_date"] for t in n.values["tests"]] == ["2021-01-08"]
    # The clerk types the occupation and overwrites the EMR's phone number.
    response = client.post(form_url(n), form_post(n, {**scalar_values(n), "patient.occupation": "会社員",
                                                      "patient.phone": "03-1111-2222", "tests": n.values["tests"]}))
    assert response.status_code == 302
    n.refresh_from_db()
    lock_before = n.lock_version

    newer = newer_bundle(bundle()) if fmt == "fhir" else read_source("ss-mix2", newer_ssmix2(tmp_path))
    push_data(client, fmt, newer)  # through the connector's API, no launch
    n.refresh_from_db()
    assert n.values["patient.birth_date"] == "1942-07-21"  # nothing applied by itself
    assert n.values["patient.phone"] == "03-1111-2222" and n.values["patient.occupation"] == "会社員"
    assert n.lock_version == lock_before
    offered = pending(n)
    assert set(offered) >= {"patient.birth_date", "test_add", "test_remove"}, offered
    assert offered["patient.birth_date"].new_value == "1942-07-22"
    assert offered["patient.birth_date"].previous_value == "1942-07-21"
    assert offered["patient.birth_date"].source.startswith(fmt)
    assert offered["test_add"].new_value["collection_date"] == "2021-01-10"
    assert offered["test_add"].new_value["result"] == "positive"
    assert offered["test_remove"].previous_value["collection_date"] == "2021-01-08"
    if fmt == "fhir":  # the EMR's phone changed too: offered, the typed one is kept
        assert offered["patient.phone"].new_value == "092-0000-1111"
    assert "1942-07-22" not in json.dumps(list(EmrChange.objects.values("fingerprint", "source", "row_key")))

    # The worklist shows the case as needing attention; the form lists every change with both values.
    login(client, physician)
    listing = client.get(reverse("notifications:list") + "?state=attention").content.decode()
    assert f"要対応：電子カルテの新しい情報 {len(offered)}件" in listing
    assert 'id="attention-banner"' in listing  # every user of the hospital sees that a case needs someone
    html = client.get(form_url(n)).content.decode()
    assert 'id="emr-changes"' in html
    for text in ("1942年7月21日", "1942年7月22日", "検査の追加", "検査の取消", "2021年1月10日"):
        assert text in html, text

    # One by one: the birth date is accepted (typed input on the page is saved with it), the phone dismissed.
    assert decide(client, n, f"accept:{offered['patient.birth_date'].pk}",
                  **{"patient.occupation": "会社員（事務）"}).status_code == 302
    n.refresh_from_db()
    assert n.values["patient.birth_date"] == "1942-07-22"
    assert n.provenance["patient.birth_date"].startswith(fmt)
    assert n.values["patient.occupation"] == "会社員（事務）"
    assert n.provenance["patient.occupation"] == f"typed:{physician.username}"
    if fmt == "fhir":
        assert decide(client, n, f"dismiss:{offered['patient.phone'].pk}").status_code == 302
    # All at once: the new test is added, the cancelled one removed.
    assert decide(client, n, "accept:all").status_code == 302
    n.refresh_from_db()
    assert not pending(n)
    assert [(t["collection_date"], t["result"]) for t in n.values["tests"]] == [("2021-01-10", "positive")]
    assert n.provenance["tests[0].result"].startswith(fmt)
    assert n.values["patient.phone"] == "03-1111-2222"
    assert n.provenance["patient.phone"].startswith("typed:")
    assert n.status == "draft"

    # The same extract again: nothing new to decide — a dismissed change stays dismissed for the same value.
    push_data(client, fmt, newer)
    assert not pending(n)
    assert AuditEvent.objects.filter(action="emr_change.detect").count() == 1
    assert AuditEvent.objects.filter(action="emr_change.decide", actor_username=physician.username).count() >= 2
    # A later EMR value for the dismissed item is a new question.
    if fmt == "fhir":
        later = newer_bundle(bundle())
        resource(later, PATIENT)["telecom"][0]["value"] = "092-0000-2222"
        push_data(client, fmt, later)
        assert pending(n)["patient.phone"].new_value == "092-0000-2222"


def test_relaunch_offers_changes_and_dismiss_all(client, physician, published, login):
    published("2021-03")
    n = open_from(client, "fhir", bundle(), physician, login)
    EmrChange.objects.all().delete()
    response = push_data(client, "fhir", newer_bundle(bundle()))
    EmrChange.objects.all().delete()  # as if the push had arrived before this feature: the relaunch finds them
    launched_form(client, launch_path(response.json()["launch_url"]))
    assert set(pending(n)) >= {"patient.birth_date", "test_add", "test_remove"}
    assert decide(client, n, "dismiss:all").status_code == 302
    n.refresh_from_db()
    assert not pending(n) and n.values["patient.birth_date"] == "1942-07-21"
    assert EmrChange.objects.filter(status="dismissed", decided_by=physician).count() >= 3
    # The same EMR values again (another push): dismissed stays dismissed; nothing is asked twice.
    push_data(client, "fhir", newer_bundle(bundle()))
    assert not pending(n)


def test_a_fifth_test_is_refused_with_a_message_and_stays_pending(client, physician, published, login):
    published("2021-03")
    n = open_from(client, "fhir", bundle(), physician, login)
    rows = [{"method": "pcr", "specimen": "saliva", "collection_date": f"2021-01-0{d}", "result": "negative"}
            for d in (1, 2, 3)]
    n.refresh_from_db()
    client.post(form_url(n), form_post(n, {**scalar_values(n), "tests": n.values["tests"] + rows}))
    n.refresh_from_db()
    assert len(n.values["tests"]) == 4
    newer = newer_bundle(bundle())
    resource(newer, "o1")["status"] = "final"  # not cancelled: only the new test differs
    push_data(client, "fhir", newer)
    add = pending(n)["test_add"]
    response = decide(client, n, f"accept:{add.pk}")
    assert response.status_code == 302
    page = client.get(form_url(n)).content.decode()
    assert "検査は4件までです" in page
    add.refresh_from_db()
    assert add.status == "pending"
    n.refresh_from_db()
    assert len(n.values["tests"]) == 4


def test_another_hospital_cannot_decide_and_sees_no_change(client, physician, published, login, make_user,
                                                            other_hospital):
    published("2021-03")
    n = open_from(client, "fhir", bundle(), physician, login)
    push_data(client, "fhir", newer_bundle(bundle()))
    outsider = make_user("dr_other", "physician", other_hospital)
    login(client, outsider)
    data = form_post(n, scalar_values(n))
    data["emr"] = "accept:all"
    assert client.post(form_url(n), data).status_code == 404
    assert EmrChange.objects.filter(status="pending").count() >= 3


@pytest.mark.integration
def test_positive_result_on_a_suspected_case_offers_the_class_change_sent_as_an_update(
        client, physician, clerk, published, login, sandbox, monkeypatch, django_capture_on_commit_callbacks):
    from assist_portal.delivery.models import Delivery
    from assist_portal.delivery.services import delivery_attempt
    from assist_portal.notifications import services

    published("2021-03")
    n = open_from(client, "fhir", suspected_bundle(), physician, login)
    assert n.values["tests"][0]["result"] == "pending"
    # 2021-01-09: confirmed as 疑似症, accepted by HER-SYS.
    monkeypatch.setattr(services, "local_date", lambda: date(2021, 1, 9))
    values = {**scalar_values(n), "report.diagnosis_class": "suspected_patient", "report.report_date": "2021-01-09",
              "clinical.diagnosis_date": "2021-01-09", "patient.residence_address": n.values["patient.address"], "tests": n.values["tests"]}
    with django_capture_on_commit_callbacks(execute=False):
        response = confirm_post(client, n, form_post(n, values, "confirm"))
    assert response.status_code == 302, page_errors(response)
    first = delivery_attempt(Delivery.objects.get().pk)
    assert first.status == "accepted"

    # 2021-01-10: the PCR turns positive in the EMR → the result and the class change are offered.
    positive = bundle()
    push_data(client, "fhir", positive)
    offered = pending(n)
    assert offered["test_update"].new_value["result"] == "positive"
    assert offered["test_update"].previous_value["result"] == "pending"
    assert offered["report.diagnosis_class"].kind == "class_change"
    assert offered["report.diagnosis_class"].new_value == "confirmed_patient"
    html = client.get(form_url(n)).content.decode()
    assert "類型の変更" in html and "患者（確定例）" in html and "疑似症患者 2021年1月9日" in html
    # A clerk may take the test result, not the class (a medical judgement): that stays for the physician.
    login(client, clerk)
    assert "医師が判断します" in client.get(form_url(n)).content.decode()
    assert decide(client, n, f"accept:{offered['report.diagnosis_class'].pk}").status_code == 302
    assert "類型の変更は医師が判断します" in client.get(form_url(n)).content.decode()
    assert pending(n)["report.diagnosis_class"].status == "pending"
    login(client, physician)
    assert decide(client, n, "accept:all").status_code == 302
    n.refresh_from_db()
    assert n.status == "confirmed" and n.has_unsent_changes and n.revision == 1  # an amendment to confirm
    assert n.values["report.diagnosis_class"] == "confirmed_patient"
    assert n.provenance["report.diagnosis_class"] == f"adopted:{physician.username}:fhir:positive-test"
    assert n.values["tests"][0]["result"] == "positive"
    assert "修正を確定する（送信内容の確認へ）" in client.get(form_url(n)).content.decode()

    # 2021-01-11: the physician confirms the amendment; HER-SYS takes it as an update of the same record.
    monkeypatch.setattr(services, "local_date", lambda: date(2021, 1, 11))
    values = {**scalar_values(n), "tests": n.values["tests"]}
    with django_capture_on_commit_callbacks(execute=False):
        response = confirm_post(client, n, form_post(n, values, "confirm"))
    assert response.status_code == 302, page_errors(response)
    n.refresh_from_db()
    update = n.revisions.get(number=2)
    assert update.kind == "amended"
    second = delivery_attempt(update.delivery_id)
    assert second.status == "accepted" and second.receipt_id == first.receipt_id
    assert update.values["report.report_date"] == "2021-01-11"
    assert n.revisions.get(number=1).values["report.report_date"] == "2021-01-09"
    assert n.class_report_dates == {"suspected_patient": "2021-01-09", "confirmed_patient": "2021-01-11"}
    stored = sandbox.received()["notifications"]
    assert len(stored) == 1 and len(stored[0]["revisions"]) == 2
    assert stored[0]["bundle_identifier"] == str(n.uuid)


def test_deciding_on_an_older_page_merges_with_what_was_saved_meanwhile(client, physician, clerk, published, login):
    from django.test import Client

    from tests.portal.conftest import verified_login
    from tests.portal.test_concurrent_edits import page_form

    published("2021-03")
    n = open_from(client, "fhir", bundle(), physician, login)
    push_data(client, "fhir", newer_bundle(bundle()))
    stale = page_form(client, n)  # the physician's page, with the changes listed
    other = verified_login(Client(), clerk)
    assert other.post(form_url(n), {**page_form(other, n), "patient.occupation": "会社員"}).status_code == 302
    birth = pending(n)["patient.birth_date"]
    response = client.post(form_url(n), {**stale, "emr": f"accept:{birth.pk}", "emr_shown": str(birth.pk)})
    assert response.status_code == 302
    n.refresh_from_db()
    assert n.values["patient.birth_date"] == "1942-07-22" and n.values["patient.occupation"] == "会社員"
