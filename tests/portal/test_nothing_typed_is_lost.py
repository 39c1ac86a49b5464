"""Issue 9 — nothing typed is lost: the page autosaves what is typed (apart from the notification, never a
suggestion) and brings it back on the next visit; a session idle too long ends (the page warns first); a session
that ends while typing keeps the input in the tab, and after signing in again the user is back on the form with
everything typed."""
from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from assist_portal.notifications.models import AutosavedInput
from tests.portal.browser import chromium, open_page, sign_in
from tests.portal.conftest import verified_login
from tests.portal.test_concurrent_edits import page_form

PATIENT = "1100000002"


@pytest.mark.django_db
def test_autosave_keeps_typed_fields_only_and_the_next_visit_restores_them(draft, clerk, physician):
    client = verified_login(Client(), clerk)
    autosave = reverse("notifications:autosave", args=[draft.uuid])
    form = reverse("notifications:form", args=[draft.uuid])
    data = page_form(client, draft)
    before = dict(draft.values)
    response = client.post(autosave, {**data, "patient.occupation": "会社員", "patient.phone": ""})
    assert response.status_code == 200, response.content
    assert response.json()["kept"] == 2
    kept = AutosavedInput.objects.get(user=clerk)
    assert kept.values == {"patient.occupation": "会社員", "patient.phone": None}  # typed and cleared, nothing else
    assert "report.diagnosis_class" not in kept.values  # the EMR's suggestion stays a suggestion
    draft.refresh_from_db()
    assert draft.values == before  # the notification itself is untouched
    # The next visit (new tab, after a crash) shows the input again, and says so.
    html = client.get(form).content.decode()
    assert 'value="会社員"' in html and "保存していない入力" in html
    # Another person does not see it.
    other = verified_login(Client(), physician).get(form).content.decode()
    assert 'value="会社員"' not in other
    # Saving puts it into the notification and the kept copy goes.
    assert client.post(form, {**page_form(client, draft), "patient.occupation": "会社員"}).status_code == 302
    assert not AutosavedInput.objects.exists()
    draft.refresh_from_db()
    assert draft.values["patient.occupation"] == "会社員"


@pytest.mark.django_db
def test_a_session_idle_too_long_ends_and_sends_to_sign_in_with_next(draft, clerk, settings):
    from assist_portal.audit.models import AuditEvent

    settings.SESSION_IDLE_SECONDS = 60
    client = verified_login(Client(), clerk)
    form = reverse("notifications:form", args=[draft.uuid])
    page = client.get(form)
    assert page.status_code == 200 and 'data-idle-seconds="60"' in page.content.decode()
    session = client.session
    session["_last_activity"] = int(time.time()) - 61
    session.save()
    response = client.get(form)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"] and "next=" in response["Location"]
    assert AuditEvent.objects.filter(action="session.idle_end", actor_username=clerk.username).exists()
    # Activity keeps it: a request within the window is fine.
    client = verified_login(Client(), clerk)
    session = client.session
    session["_last_activity"] = int(time.time()) - 59
    session.save()
    assert client.get(form).status_code == 200


@pytest.mark.e2e
@pytest.mark.integration
def test_session_cookie_removed_while_typing_then_sign_in_and_the_typed_values_are_there(
        live_server, settings, draft, clerk):
    settings.PUBLIC_BASE_URL = live_server.url
    url = live_server.url + reverse("notifications:form", args=[draft.uuid])
    device = TOTPDevice.objects.get(user=clerk)
    # Signed in already (a session made by the test client): the one-time code of this 30-s step is then still
    # unused for the sign-in that matters, the one after the session ended.
    session = verified_login(Client(), clerk).cookies["sessionid"].value
    with chromium() as browser, open_page(browser) as page:
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page.goto(url)
        page.wait_for_url("**/notifications/*/")
        page.fill("[name='patient.occupation']", "会社員")
        expect(page.locator("#autosave-status")).to_contain_text("自動で控えました")
        page.context.clear_cookies()  # the session ends while the user types
        page.fill("[name='patient.phone']", "03-1111-2222")
        page.locator("[name='notes.remarks']").press_sequentially("家族も発熱")
        warning = page.locator("#session-warning")
        expect(warning).to_contain_text("サインインの有効期限が切れました")
        warning.locator("a").click()
        sign_in(page, clerk, device)
        page.wait_for_url("**/notifications/*/")
        expect(page.locator("[name='patient.occupation']")).to_have_value("会社員")
        expect(page.locator("[name='patient.phone']")).to_have_value("03-1111-2222")
        expect(page.locator("[name='notes.remarks']")).to_have_value("家族も発熱")
        expect(page.locator("#autosave-status")).to_contain_text("自動で控えました")
        assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('hersys-unsaved')).length") == 0
        page.click("button[name=action][value=save]")
        page.wait_for_selector("text=下書きを保存しました")
    draft.refresh_from_db()
    assert draft.values["patient.occupation"] == "会社員" and draft.values["patient.phone"] == "03-1111-2222"
    assert draft.values["notes.remarks"] == "家族も発熱"
