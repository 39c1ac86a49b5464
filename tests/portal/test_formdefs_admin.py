"""Central admins edit definitions in the UI: draft, edit with validation, preview, diff, publish, export, import."""
import io
import json

import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent
from assist_portal.formdefs.models import FormDefinition, ImmutableDefinitionError

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def admin_client(client, central_admin, login, published):
    published("2021-03")
    login(client, central_admin)
    return client


def new_draft(client):
    base = FormDefinition.objects.get(status="published")
    assert client.post(reverse("central:new"), {"source": "copy", "base": base.pk}).status_code == 302
    return FormDefinition.objects.filter(status="draft").latest("id")


def test_hospital_staff_cannot_reach_admin_pages(client, physician, login, published):
    published("2021-03")
    login(client, physician)
    assert client.get(reverse("central:list")).status_code == 403


def test_edit_item_shows_in_diff_preview_and_is_audited(admin_client):
    draft = new_draft(admin_client)
    url = reverse("central:item-edit", args=[draft.pk, "patient.occupation"])
    assert admin_client.get(url).status_code == 200
    r = admin_client.post(url, {"label": "職業（勤務先を含む）", "required": "on", "help": "勤務先名も記入"})
    assert r.status_code == 302
    draft.refresh_from_db()
    item = next(i for i in draft.definition["items"] if i["id"] == "patient.occupation")
    assert item["label"] == "職業（勤務先を含む）" and item["required"] is True
    detail = admin_client.get(reverse("central:detail", args=[draft.pk])).content.decode()
    assert 'id="diff"' in detail and "patient.occupation" in detail or "職業" in detail
    preview = admin_client.get(reverse("central:preview", args=[draft.pk])).content.decode()
    assert "職業（勤務先を含む）" in preview and "見本" in preview
    assert AuditEvent.objects.filter(action="formdef.edit", object_id=str(draft.pk)).exists()


def test_invalid_edits_are_refused_with_a_clear_message(admin_client):
    draft = new_draft(admin_client)
    before = draft.content_hash
    r = admin_client.post(reverse("central:item-edit", args=[draft.pk, "patient.sex"]),
                          {"label": "性別", "values": "male 男"})
    assert r.status_code == 400 and "コード=ラベル" in r.content.decode()
    r = admin_client.post(reverse("central:rules", args=[draft.pk]),
                          {"rules": json.dumps([{"id": "x", "kind": "date_order",
                                                  "params": {"chain": ["no.such_item", "report.report_date"]},
                                                  "severity": "error", "message": "m"}])}, follow=True)
    assert "保存できませんでした" in r.content.decode()
    r = admin_client.post(reverse("central:rules", args=[draft.pk]), {"rules": "{not json"}, follow=True)
    assert "保存できませんでした" in r.content.decode()
    draft.refresh_from_db()
    assert draft.content_hash == before


def test_add_item_and_publish_to_all(admin_client, hospital):
    draft = new_draft(admin_client)
    r = admin_client.post(reverse("central:item-add", args=[draft.pk]),
                          {"id": "notes.contact_person", "section": "notes", "type": "text", "label": "連絡担当者"})
    assert r.status_code == 302, r.content.decode()[:1000]
    r = admin_client.post(reverse("central:publish", args=[draft.pk]), {"scope": "all"})
    assert r.status_code == 302
    draft.refresh_from_db()
    assert draft.is_published
    from assist_portal.formdefs.selectors import definition_for_hospital

    assert definition_for_hospital(hospital).pk == draft.pk
    # Published definitions are immutable: the UI refuses edits and the model refuses changes.
    assert admin_client.post(reverse("central:item-edit", args=[draft.pk, "patient.sex"]),
                             {"label": "x"}).status_code == 404
    draft.definition["title"] = "changed"
    from formengine import content_hash

    draft.content_hash = content_hash(draft.definition)
    with pytest.raises(ImmutableDefinitionError):
        draft.save()
    assert AuditEvent.objects.filter(action="formdef.publish").exists()


def test_questionnaire_export_and_reimport_via_ui(admin_client):
    published = FormDefinition.objects.get(status="published")
    r = admin_client.get(reverse("central:questionnaire", args=[published.pk]))
    assert r.status_code == 200
    q = json.loads(r.content)
    assert q["resourceType"] == "Questionnaire"
    upload = io.BytesIO(json.dumps(q, ensure_ascii=False).encode())
    upload.name = "q.json"
    r = admin_client.post(reverse("central:new"), {"source": "questionnaire", "file": upload, "label": "Q取込"})
    assert r.status_code == 302
    imported = FormDefinition.objects.get(version="Q取込")
    assert imported.content_hash == published.content_hash


def test_excel_layout_upload_becomes_a_draft(admin_client):
    from tests.formengine.test_excel import ROWS, _workbook  # the workbook the formengine tests build

    upload = io.BytesIO(_workbook(ROWS))
    upload.name = "form.xlsx"
    r = admin_client.post(reverse("central:new"), {"source": "excel", "file": upload, "label": "Excel取込"})
    assert r.status_code == 302
    row = FormDefinition.objects.get(version="Excel取込")
    assert row.status == "draft" and row.definition["items"]
