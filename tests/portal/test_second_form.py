"""Issue 7: the core knows no disease. A second real form — 腸管出血性大腸菌感染症 発生届 (別記様式3-3) — is imported
and published for one hospital in the central admin UI with no code change, chosen when a notification is
opened, filled, confirmed and accepted by the sandbox; forms keep their own assignments, drafts and EMR items."""
from __future__ import annotations

import io
import json

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.formdefs.models import FormAssignment, FormDefinition
from assist_portal.formdefs.selectors import (
    definition_for_hospital,
    forms_for_hospital,
    hospital_default_form,
)
from assist_portal.notifications.models import LaunchToken, Notification
from tests.portal.conftest import confirm_post, launch_path, launched_form
from tests.portal.test_workflow import form_post

pytestmark = [pytest.mark.django_db]
EHEC = "ehec-2023-05"
PATIENT = "1100000002"  # the extract has COVID tests, a COVID diagnosis date and a first visit


def ehec_catalog() -> dict:
    import vocabulary

    return json.loads((vocabulary.CATALOG_DIR / f"{EHEC}.json").read_text(encoding="utf-8"))


@pytest.fixture
def covid_and_ehec(published, hospital):
    """H0001 uses COVID-19 (all hospitals, first) and EHEC (only H0001, later)."""
    from assist_portal.formdefs.services import definition_import_builtin, definition_publish

    covid = published("2021-03")
    ehec = definition_publish(definition_import_builtin(EHEC), hospitals=[hospital])
    return covid, ehec


def ehec_values(notification, **extra) -> dict:
    """What the clerk and the physician add to the EMR pre-fill of an EHEC draft (O157 VT2 from stool)."""
    values = {k: v for k, v in notification.values.items() if not isinstance(v, (list, dict))}
    values.update({
        "report.diagnosis_class": "confirmed_patient",
        "patient.occupation": "無職",
        "clinical.symptoms": ["abdominal_pain", "bloody_stool"],
        "ehec.diagnosis_methods": ["isolation_vt"],
        "ehec.vt_confirmation": ["toxin_production"],
        "ehec.specimen": "stool",
        "ehec.o_serogroup": "O157",
        "ehec.verotoxin": "vt2",
        "clinical.onset_date": "2021-01-06",
        "clinical.diagnosis_date": "2021-01-09",
        "report.report_date": "2021-01-09",
        "infection.route": "oral",
        "infection.food_detail": "焼肉店で加熱不十分な牛肉",
    })
    values.update(extra)
    return values


def open_launch(client, push, patient=PATIENT, fmt="fhir", **params):
    response = push(client, patient, fmt)
    assert response.status_code == 201, response.content
    return launch_path(response.json()["launch_url"])


# ---- the whole path for the second form ----------------------------------------------------------------------

@pytest.mark.integration
def test_admin_publishes_ehec_for_h0001_and_a_notification_of_it_is_accepted(
        client, hospital, other_hospital, clerk, physician, central_admin, published, push, login, sandbox,
        django_capture_on_commit_callbacks):
    covid = published("2021-03")

    # 1. The central admin finds the shipped EHEC catalog in the list (no code lists it) and imports it.
    login(client, central_admin)
    page = client.get(reverse("central:list")).content.decode()
    assert f'<option value="{EHEC}">' in page and "腸管出血性大腸菌感染症" in page
    assert "健感発第0308001号" in page  # the source is shown with the catalog
    response = client.post(reverse("central:new"), {"source": "builtin", "catalog": EHEC})
    assert response.status_code == 302
    draft = FormDefinition.objects.get(form="ehec")
    assert draft.version == "2023-05" and draft.status == "draft"
    detail = client.get(response["Location"]).content.decode()
    assert "腸管出血性大腸菌感染症 発生届" in detail and "ehec" in detail
    assert "同じ様式の公開版はまだありません" in detail  # never diffed against the COVID form
    preview = client.get(reverse("central:preview", args=[draft.pk])).content.decode()
    assert "この様式にない項目" not in preview

    # 2. … and publishes it for H0001 only. The COVID form stays assigned and stays H0001's default.
    response = client.post(reverse("central:publish", args=[draft.pk]), {"scope": "subset",
                                                                         "hospitals": [hospital.pk]})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_published
    assert definition_for_hospital(hospital, form="ehec").pk == draft.pk
    assert definition_for_hospital(hospital, form="covid19").pk == covid.pk
    assert definition_for_hospital(hospital).pk == covid.pk
    assert definition_for_hospital(other_hospital, form="ehec") is None
    assert [d.form for d in forms_for_hospital(hospital)] == ["covid19", "ehec"]
    assert [d.form for d in forms_for_hospital(other_hospital)] == ["covid19"]

    # 3. The clerk opens the EMR launch URL: H0001 has two forms, so the launch page asks which, COVID preselected.
    login(client, clerk)
    url = open_launch(client, push)
    choose = client.get(url)
    assert choose.status_code == 200
    html = choose.content.decode()
    assert "届出様式" in html and 'value="covid19" id="form-covid19" checked' in html
    assert 'value="ehec" id="form-ehec"' in html and 'id="form-ehec" checked' not in html
    assert Notification.objects.count() == 0 and LaunchToken.objects.get().used_at is None  # not spent yet
    response = client.post(url, {"form": "ehec"})
    assert response.status_code == 302
    notification = Notification.objects.get()
    assert notification.form == "ehec" and notification.definition_id == draft.pk
    form_page = client.get(response["Location"]).content.decode()
    assert "腸管出血性大腸菌感染症 発生届" in form_page and 'name="ehec.diagnosis_methods"' in form_page
    assert 'name="tests-0-method"' not in form_page

    # 4. The clerk fills in what the EMR lacks and saves; the physician confirms.
    response = client.post(reverse("notifications:form", args=[notification.uuid]),
                           form_post(notification, ehec_values(notification)))
    assert response.status_code == 302, response.content.decode()[:2000]
    notification.refresh_from_db()
    assert notification.values["ehec.o_serogroup"] == "O157"
    login(client, physician)
    with django_capture_on_commit_callbacks(execute=False):
        response = confirm_post(client, notification, form_post(notification, ehec_values(notification), "confirm"))
    assert response.status_code == 302, [line for line in response.content.decode().splitlines()
                                         if "error" in line][:10]
    notification.refresh_from_db()
    assert notification.status == "confirmed"

    # 5. The sandbox accepts it; what it received is the EHEC item set.
    delivery = Delivery.objects.get(stream=str(notification.uuid))
    assert delivery_attempt(delivery.pk).status == "accepted"
    stored = sandbox.received(include_bundles=True)["notifications"]
    bundle = stored[-1]["revisions"][0]["bundle"]
    qr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    assert qr["questionnaire"].endswith("|2023-05")
    text = json.dumps(qr, ensure_ascii=False)
    assert "O157" in text and "isolation_vt" in text and "pcr" not in text
    answered = set()
    stack = [qr["item"]]
    while stack:
        for item in stack.pop() or []:
            if item.get("answer"):
                answered.add(item["definition"].rsplit(":", 1)[1])
            stack.append(item.get("item"))
    assert set(ehec_catalog()["item_set"]) <= answered
    printed = client.get(reverse("notifications:print", args=[notification.uuid])).content.decode()
    assert "腸管出血性大腸菌感染症 発生届（別記様式）" in printed and "O157" in printed


def test_ehec_questionnaire_exported_and_reimported_in_the_ui(client, central_admin, login, hospital,
                                                              covid_and_ehec):
    _, ehec = covid_and_ehec
    login(client, central_admin)
    response = client.get(reverse("central:questionnaire", args=[ehec.pk]))
    assert response.status_code == 200
    q = json.loads(response.content)
    assert q["url"].endswith("/ehec") and q["version"] == "2023-05"
    assert [i["linkId"] for i in q["item"][0]["item"]] == ["i0_1", "i0_2", "i0_3", "i0_4", "i0_5"]
    upload = io.BytesIO(json.dumps(q, ensure_ascii=False).encode())
    upload.name = "ehec.json"
    response = client.post(reverse("central:new"), {"source": "questionnaire", "file": upload,
                                                    "label": "EHEC取込", "form": "ehec"})
    assert response.status_code == 302
    imported = FormDefinition.objects.get(version="EHEC取込")
    assert imported.form == "ehec" and imported.content_hash == ehec.content_hash


# ---- choosing the form at opening ---------------------------------------------------------------------------

def test_single_form_launch_stays_one_click(client, physician, published, push, login):
    published("2021-03")
    login(client, physician)
    response = launched_form(client, open_launch(client, push))
    assert response.context["notification"].pk == Notification.objects.get().pk
    assert Notification.objects.get().form == "covid19"


def test_form_named_in_the_launch_url_opens_directly_and_an_unknown_one_spends_nothing(
        client, physician, covid_and_ehec, push, login):
    login(client, physician)
    url = open_launch(client, push)
    refused = client.get(url + "?form=measles")
    assert refused.status_code == 400 and "使えません" in refused.content.decode()
    assert LaunchToken.objects.get().used_at is None  # the URL still works
    launched_form(client, url + "?form=ehec")
    assert Notification.objects.get().form == "ehec"


def test_launch_choice_page_refuses_another_hospitals_user(client, make_user, other_hospital, covid_and_ehec,
                                                           push, login):
    outsider = make_user("dr_other", "physician", other_hospital)
    url = open_launch(client, push)
    login(client, outsider)
    assert client.get(url).status_code == 403
    assert client.post(url, {"form": "ehec"}).status_code == 403
    assert Notification.objects.count() == 0


def test_demo_launcher_offers_the_forms_with_the_default_preselected(client, physician, covid_and_ehec, login,
                                                                     settings):
    settings.DEMO_MODE = True
    login(client, physician)
    html = client.get(reverse("notifications:demo")).content.decode()
    assert "届出様式" in html and '<option value="covid19" selected>' in html
    response = client.post(reverse("notifications:demo-launch"), {"launch": f"fhir:{PATIENT}", "form": "ehec"})
    assert response.status_code == 302 and response["Location"].endswith("?form=ehec")
    launched_form(client, response["Location"])
    assert Notification.objects.get(patient_ref=PATIENT).form == "ehec"


def test_admin_sets_the_default_form_on_the_hospital_page(client, central_admin, physician, covid_and_ehec, push,
                                                          login, hospital, settings):
    login(client, central_admin)
    page = client.get(reverse("central:hospitals")).content.decode()
    assert "既定の届出様式" in page and "腸管出血性大腸菌感染症 発生届" in page
    refused = client.post(reverse("central:hospital-default-form", args=[hospital.pk]), {"default_form": "measles"},
                          follow=True)
    assert "割り当てられていません" in refused.content.decode()
    response = client.post(reverse("central:hospital-default-form", args=[hospital.pk]), {"default_form": "ehec"})
    assert response.status_code == 302
    hospital.refresh_from_db()
    assert hospital.default_form == "ehec" and hospital_default_form(hospital) == "ehec"
    assert definition_for_hospital(hospital).form == "ehec"
    login(client, physician)
    html = client.get(open_launch(client, push)).content.decode()
    assert 'value="ehec" id="form-ehec" checked' in html
    settings.DEMO_MODE = True
    assert '<option value="ehec" selected>' in client.get(reverse("notifications:demo")).content.decode()


# ---- EMR items, drafts and reopening per form ----------------------------------------------------------------

def test_extract_items_outside_the_ehec_emr_items_never_reach_an_ehec_draft(client, physician, covid_and_ehec,
                                                                            push, login):
    login(client, physician)
    client.get(open_launch(client, push, fmt="ss-mix2") + "?form=ehec")
    notification = Notification.objects.get()
    emr_items = set(ehec_catalog()["emr_items"])
    from_emr = {k for k, v in notification.provenance.items() if v.startswith(("ss-mix2", "fhir"))}
    assert from_emr and from_emr <= emr_items
    for absent in ("tests", "clinical.diagnosis_date", "clinical.first_visit_date", "patient.name_kana",
                   "patient.postal_code", "care.hospitalized", "risk.factors"):
        assert absent not in notification.values, absent
    assert notification.values["patient.name"] == "高橋　健"
    assert notification.values["report.facility_name"] == "さくら総合病院"
    assert not notification.suggestions or set(notification.suggestions) <= emr_items
    # A relaunch for the same form refreshes only from the EMR items, too.
    client.get(open_launch(client, push, fmt="fhir") + "?form=ehec")
    notification.refresh_from_db()
    assert "tests" not in notification.values and "clinical.diagnosis_date" not in notification.values


def test_invalid_extract_values_are_not_prefilled(physician, covid_and_ehec, hospital):
    from assist_portal.notifications import services
    from assist_portal.notifications.models import Extract

    extract = Extract.objects.create(
        hospital=hospital, patient_ref="P-1", format="fhir", payload_sha256="0" * 64,
        items={"patient.name": "見本　花子", "patient.birth_date": "1980-02-31", "patient.sex": "unknown-code",
               "patient.phone": "03-1234-5678", "clinical.diagnosis_date": "2021-01-09"},
        provenance={"patient.name": "fhir:Patient.name", "patient.birth_date": "fhir:Patient.birthDate",
                    "patient.sex": "fhir:Patient.gender", "clinical.diagnosis_date": "fhir:Condition"})
    n = services.notification_open_from_extract(extract, physician, form="ehec")
    assert n.values["patient.name"] == "見本　花子" and n.values["patient.phone"] == "03-1234-5678"
    for absent in ("patient.birth_date", "patient.sex", "clinical.diagnosis_date"):
        assert absent not in n.values and absent not in n.provenance


def test_a_patient_may_have_an_open_covid_and_an_open_ehec_draft(physician, covid_and_ehec, hospital, push, client):
    from assist_portal.notifications import services
    from assist_portal.notifications.models import Extract

    push(client, PATIENT)
    extract = Extract.objects.get()
    covid = services.notification_open_from_extract(extract, physician)
    ehec = services.notification_open_from_extract(extract, physician, form="ehec")
    assert (covid.form, ehec.form) == ("covid19", "ehec") and covid.pk != ehec.pk
    assert services.notification_open_from_extract(extract, physician, form="covid19").pk == covid.pk
    assert services.notification_open_from_extract(extract, physician, form="ehec").pk == ehec.pk
    assert "tests" in covid.values and "tests" not in ehec.values
    with pytest.raises(IntegrityError), transaction.atomic():  # still one open draft per patient AND form
        Notification.objects.create(hospital=hospital, patient_ref=PATIENT, definition=ehec.definition, form="ehec")


def test_reopen_window_is_per_form(client, physician, covid_and_ehec, push, login,
                                   django_capture_on_commit_callbacks):
    from tests.portal.test_workflow import filled_values

    login(client, physician)
    client.get(open_launch(client, push) + "?form=covid19")
    covid = Notification.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        r = confirm_post(client, covid, form_post(covid, filled_values(covid), "confirm"))
    assert r.status_code == 302
    # Within CASE_REOPEN_DAYS the COVID case reopens; the EHEC form starts its own notification.
    client.get(open_launch(client, push) + "?form=ehec")
    client.get(open_launch(client, push) + "?form=covid19")
    assert Notification.objects.count() == 2
    assert Notification.objects.get(form="covid19").pk == covid.pk
    assert Notification.objects.get(form="ehec").status == "draft"


def test_publishing_one_form_leaves_the_other_forms_assignment_and_drafts(client, central_admin, physician,
                                                                          covid_and_ehec, push, login, hospital):
    covid, ehec = covid_and_ehec
    login(client, physician)
    client.get(open_launch(client, push) + "?form=covid19")
    client.get(open_launch(client, push, patient="2200000007") + "?form=ehec")
    covid_draft, ehec_draft = Notification.objects.get(form="covid19"), Notification.objects.get(form="ehec")

    # A new COVID version for every hospital moves the COVID draft only.
    login(client, central_admin)
    client.post(reverse("central:new"), {"source": "builtin", "catalog": "covid19-2022-09"})
    new_covid = FormDefinition.objects.get(form="covid19", version="2022-09")
    assert client.post(reverse("central:publish", args=[new_covid.pk]), {"scope": "all"}).status_code == 302
    covid_draft.refresh_from_db()
    ehec_draft.refresh_from_db()
    assert covid_draft.definition_id == new_covid.pk and ehec_draft.definition_id == ehec.pk
    assert definition_for_hospital(hospital, form="ehec").pk == ehec.pk
    assert FormAssignment.objects.filter(definition=ehec).count() == 1
    # Opening the EHEC draft never moves it to a COVID definition.
    login(client, physician)
    assert client.get(reverse("notifications:form", args=[ehec_draft.uuid])).status_code == 200
    ehec_draft.refresh_from_db()
    assert ehec_draft.definition_id == ehec.pk and ehec_draft.migration_report == {}


def test_published_versions_are_unique_per_form_not_across_forms(central_admin, covid_and_ehec):
    from assist_portal.formdefs.services import definition_create, definition_publish
    from formengine import DefinitionError

    _, ehec = covid_and_ehec
    same_label = definition_create(ehec.definition, form="ehec", version="2021-03", user=central_admin)
    definition_publish(same_label)  # "2021-03" is published for COVID-19 too: another form, no clash
    again = definition_create(ehec.definition, form="ehec", version="2021-03", user=central_admin)
    with pytest.raises(DefinitionError, match="すでに公開"):
        definition_publish(again)


def test_builtin_catalog_list_is_whatever_the_vocabulary_folder_holds(client, central_admin, login, tmp_path,
                                                                      monkeypatch):
    import shutil

    import vocabulary

    for path in vocabulary.CATALOG_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    extra = ehec_catalog()
    extra.update(form="measles", disease="麻しん", version="2099-01", title="麻しん 発生届（見本）")
    (tmp_path / "measles-2099-01.json").write_text(json.dumps(extra, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(vocabulary, "CATALOG_DIR", tmp_path)
    vocabulary._index.cache_clear()
    try:
        login(client, central_admin)
        page = client.get(reverse("central:list")).content.decode()
        assert '<option value="measles-2099-01">' in page and f'<option value="{EHEC}">' in page
        assert client.post(reverse("central:new"), {"source": "builtin", "catalog": "measles-2099-01"}).status_code == 302
        assert FormDefinition.objects.get(form="measles").version == "2099-01"
    finally:
        monkeypatch.undo()
        vocabulary._index.cache_clear()
