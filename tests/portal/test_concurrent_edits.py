"""Issue 9 — two people on one draft: the page carries the version and the values it was loaded with; different
fields merge without a conflict; the same field shows who saved and when and, per field, both values and the
original; the person chooses (per field or all) and that save succeeds. In real Chromium with two contexts too."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from assist_portal.notifications.models import Notification
from tests.portal.browser import chromium, open_page, sign_in
from tests.portal.conftest import confirm_post, launch_path, launched_form, push_extract, verified_login

PATIENT = "1100000002"


def page_form(client, n) -> dict:
    """Everything the form page would post as loaded (hidden version and base included)."""
    html = client.get(reverse("notifications:form", args=[n.uuid])).content.decode()
    data: dict = {}
    for name, value in re.findall(r'<input type="hidden" name="(lock_version|base)" value="([^"]*)"', html):
        data[name] = value
    n.refresh_from_db()
    for key, value in n.values.items():
        if isinstance(value, dict):
            continue  # the age ({value, unit}): computed again on save
        if key == "tests":
            for i, row in enumerate(value):
                for field, v in row.items():
                    data[f"tests-{i}-{field}"] = v
        else:
            data[key] = value
    data["action"] = "save"
    return data


@pytest.mark.django_db
def test_different_fields_merge_and_the_same_field_is_resolved(draft, clerk, physician):
    url = reverse("notifications:form", args=[draft.uuid])
    a, b = verified_login(Client(), clerk), verified_login(Client(), physician)
    page_a, page_b = page_form(a, draft), page_form(b, draft)
    original_phone = page_a["patient.phone"]
    # Different fields: the clerk types the occupation, the physician (on the older page) the phone.
    assert a.post(url, {**page_a, "patient.occupation": "会社員"}).status_code == 302
    assert b.post(url, {**page_b, "patient.phone": "03-1111-2222"}).status_code == 302
    draft.refresh_from_db()
    assert draft.values["patient.occupation"] == "会社員" and draft.values["patient.phone"] == "03-1111-2222"
    assert draft.provenance["patient.occupation"] == f"typed:{clerk.username}"
    assert draft.provenance["patient.phone"] == f"typed:{physician.username}"

    # The same field: both pages loaded now; the clerk saves first, the physician's save is a conflict.
    page_a, page_b = page_form(a, draft), page_form(b, draft)
    r = a.post(url, {**page_a, "patient.phone": "090-1234-5678", "patient.occupation": "教員"})
    assert r.status_code == 302, re.findall(r'role="alert">([^<]*)', r.content.decode())
    response = b.post(url, {**page_b, "patient.phone": "080-9999-0000", "patient.guardian_name": "高橋　花子"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "佐藤　花子さんが" in html and "同じ項目が変更されています（1件）" in html
    conflict = html[html.index('id="conflicts"'):html.index("</section>", html.index('id="conflicts"'))]
    for text in ("当該者電話番号", "080-9999-0000", "090-1234-5678", "03-1111-2222"):
        assert text in conflict, text
    assert original_phone not in conflict
    draft.refresh_from_db()
    assert draft.values["patient.phone"] == "090-1234-5678"  # nothing overwritten
    assert 'value="教員"' in html and 'value="高橋　花子"' in html  # the other change merged, own input kept
    retry = {name: value for name, value in re.findall(
        r'<input type="hidden" name="(lock_version|base)" value="([^"]*)"', html)}
    assert int(retry["lock_version"]) == draft.lock_version  # the page moved to the saved version

    # Saving the conflict page without a choice asks again; choosing the other person's value saves it.
    resubmit = {**page_b, **retry, "patient.phone": "080-9999-0000", "patient.occupation": "教員",
                "patient.guardian_name": "高橋　花子", "conflict_items": "patient.phone"}
    assert b.post(url, resubmit).status_code == 409
    assert b.post(url, {**resubmit, "resolve::patient.phone": "theirs"}).status_code == 302
    draft.refresh_from_db()
    assert draft.values["patient.phone"] == "090-1234-5678"
    assert draft.values["patient.guardian_name"] == "高橋　花子" and draft.values["patient.occupation"] == "教員"


@pytest.mark.django_db
def test_all_mine_keeps_my_values_for_every_conflicting_field(draft, clerk, physician):
    url = reverse("notifications:form", args=[draft.uuid])
    a, b = verified_login(Client(), clerk), verified_login(Client(), physician)
    page_a, page_b = page_form(a, draft), page_form(b, draft)
    assert a.post(url, {**page_a, "patient.phone": "090-1234-5678", "patient.occupation": "教員"}).status_code == 302
    mine = {"patient.phone": "080-9999-0000", "patient.occupation": "医師"}
    response = b.post(url, {**page_b, **mine})
    assert response.status_code == 409 and "（2件）" in response.content.decode()
    retry = dict(re.findall(r'<input type="hidden" name="(lock_version|base)" value="([^"]*)"',
                            response.content.decode()))
    data = {**page_b, **mine, **retry, "conflict_items": ["patient.occupation", "patient.phone"],
            "resolve_all": "mine"}
    assert b.post(url, data).status_code == 302
    draft.refresh_from_db()
    assert draft.values["patient.phone"] == "080-9999-0000" and draft.values["patient.occupation"] == "医師"


@pytest.mark.e2e
@pytest.mark.integration
def test_two_browsers_on_one_draft(live_server, settings, hospital, published, clerk, physician):
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    client = Client()
    launch = push_extract(client, PATIENT, "ss-mix2").json()["launch_url"]
    verified_login(client, clerk)
    launched_form(client, launch_path(launch))
    n = Notification.objects.get(patient_ref=PATIENT)
    form_url = live_server.url + reverse("notifications:form", args=[n.uuid])
    devices = {u.username: TOTPDevice.objects.get(user=u) for u in (clerk, physician)}

    def save(page):
        page.click("button[name=action][value=save]")
        page.wait_for_load_state("networkidle")

    with chromium() as browser, open_page(browser) as a, open_page(browser) as b:
        for page, user in ((a, clerk), (b, physician)):
            page.goto(form_url)
            sign_in(page, user, devices[user.username])
            page.wait_for_url("**/notifications/*/")
        # Different fields → merged.
        a.fill("[name='patient.occupation']", "会社員")
        save(a)
        expect(a.locator("text=下書きを保存しました")).to_be_visible()
        b.fill("[name='patient.phone']", "03-1111-2222")
        save(b)
        expect(b.locator("text=下書きを保存しました")).to_be_visible()
        expect(b.locator("[name='patient.occupation']")).to_have_value("会社員")
        # The same field → who saved and when, both values and the original → the choice → saved.
        a.reload()
        a.fill("[name='patient.phone']", "090-1234-5678")
        save(a)
        b.fill("[name='patient.phone']", "080-9999-0000")
        save(b)
        panel = b.locator("#conflicts")
        expect(panel).to_contain_text("090-1234-5678")
        expect(panel).to_contain_text("080-9999-0000")
        expect(panel).to_contain_text("03-1111-2222")
        expect(b.locator("[role=alert]").first).to_contain_text("佐藤　花子さんが")
        b.check("input[name='resolve::patient.phone'][value=mine]")
        b.click("#conflicts button[name=action][value=save]")
        b.wait_for_load_state("networkidle")
        expect(b.locator("text=下書きを保存しました")).to_be_visible()
        expect(b.locator("[name='patient.phone']")).to_have_value("080-9999-0000")
    n.refresh_from_db()
    assert n.values["patient.phone"] == "080-9999-0000" and n.values["patient.occupation"] == "会社員"


@pytest.mark.django_db
def test_a_confirmation_on_an_older_page_merges_confirms_nothing_and_the_next_confirmation_succeeds(
        draft, clerk, physician, django_capture_on_commit_callbacks):
    from assist_portal.delivery.models import Delivery
    from tests.portal.test_workflow import filled_values

    url = reverse("notifications:form", args=[draft.uuid])
    a, b = verified_login(Client(), clerk), verified_login(Client(), physician)
    page_b = page_form(b, draft)
    assert a.post(url, {**page_form(a, draft), "patient.occupation": "会社員"}).status_code == 302
    full = {k: v for k, v in filled_values(draft).items() if k != "tests"}
    with django_capture_on_commit_callbacks(execute=False):
        response = b.post(url, {**page_b, **full, "action": "confirm"})
    assert response.status_code == 409 and "確定していません" in response.content.decode()
    assert not Delivery.objects.exists()
    draft.refresh_from_db()
    assert draft.values["patient.occupation"] == "会社員"  # the other change kept
    assert draft.values["report.diagnosis_class"] == "confirmed_patient"  # and the physician's input saved
    with django_capture_on_commit_callbacks(execute=False):
        again = confirm_post(b, draft, {**page_form(b, draft), "action": "confirm"})  # through the review step
    assert again.status_code == 302, re.findall(r"<a href=\"#f-[^\"]*\">([^<]*)</a>", again.content.decode())
    draft.refresh_from_db()
    assert draft.status == "confirmed" and draft.revisions.get().values["patient.occupation"] == "会社員"
