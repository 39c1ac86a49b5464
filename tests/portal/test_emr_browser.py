"""Issue 9 in real Chromium: suggestions and EMR changes stay suggestions until a person clicks; Enter in any
single-line input changes nothing; the pending EMR changes are decided with explicit clicks, at every width."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.portal.browser import PHONE, chromium, no_sideways_scroll, open_page, screenshot, sign_in
from tests.portal.test_emr_updates import bundle, newer_bundle, push_data

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def draft_with_emr_changes(live_server, settings, hospital, published, physician):
    """A draft opened from the FHIR extract (the EMR suggests a diagnosis class), then a newer extract pushed
    through the API: birth date, a new test, a cancelled test, a phone number → pending changes."""
    from assist_portal.notifications import services
    from assist_portal.notifications.models import EmrChange, Extract

    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    push_data(Client(), "fhir", bundle())
    notification = services.notification_open_from_extract(Extract.objects.get(), physician)
    push_data(Client(), "fhir", newer_bundle(bundle()))
    assert EmrChange.objects.filter(status="pending").count() == 4
    assert notification.suggestions.get("report.diagnosis_class")
    url = live_server.url + reverse("notifications:form", args=[notification.uuid])
    return url, TOTPDevice.objects.get(user=physician), notification


def open_signed_in(page, url, user, device):
    page.goto(url)
    sign_in(page, user, device)
    page.wait_for_url("**/notifications/*/")
    page.wait_for_load_state("networkidle")


SINGLE_LINE = "#notification-form input:not([type=hidden]):not([type=radio]):not([type=checkbox])"


def single_line_inputs(page) -> list:
    """Every visible single-line input of the form, named or not (a locator each)."""
    boxes = page.locator(SINGLE_LINE)
    return [boxes.nth(i) for i in range(boxes.count()) if boxes.nth(i).is_visible()]


def test_enter_in_every_single_line_input_leaves_every_suggested_item_as_it_was(draft_with_emr_changes, physician):
    from assist_portal.audit.models import AuditEvent
    from assist_portal.notifications.models import EmrChange, Notification

    url, device, notification = draft_with_emr_changes
    before = dict(Notification.objects.get(pk=notification.pk).values)
    posts: list[str] = []
    with chromium() as browser, open_page(browser) as page:
        open_signed_in(page, url, physician, device)
        form_url = page.url
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/notifications/" in r.url
                                   and not r.url.endswith("/check") else None)
        expect(page.locator("#emr-changes tbody tr")).to_have_count(4)
        adopt = page.locator("button[name=accept]")
        assert adopt.count() == 1
        boxes = single_line_inputs(page)
        assert len(boxes) >= 15
        for box in boxes:
            box.press("Enter")
        page.wait_for_load_state("networkidle")
        assert posts == [] and page.url == form_url
        expect(page.locator("#emr-changes tbody tr")).to_have_count(4)
        expect(adopt).to_have_count(1)
        assert page.locator("[name='report.diagnosis_class']").input_value() == ""  # not adopted
    row = Notification.objects.get(pk=notification.pk)
    assert row.values == before and "report.diagnosis_class" not in row.values
    assert EmrChange.objects.filter(notification=row, status="pending").count() == 4
    assert not AuditEvent.objects.filter(action__in=["notification.save", "emr_change.decide"]).exists()


def test_changes_are_accepted_and_dismissed_by_explicit_clicks_at_375_px(draft_with_emr_changes, physician):
    from assist_portal.notifications.models import EmrChange, Notification

    url, device, notification = draft_with_emr_changes
    with chromium() as browser, open_page(browser, viewport=PHONE) as page:
        open_signed_in(page, url, physician, device)
        panel = page.locator("#emr-changes")
        expect(panel).to_contain_text("1942年7月22日")
        scroll_width, inner_width = no_sideways_scroll(page)
        assert scroll_width <= inner_width
        panel.scroll_into_view_if_needed()
        screenshot(page, "form-emr-changes")
        page.fill("[name='patient.occupation']", "会社員")  # typed on the page before deciding: kept
        page.click("button[aria-label='生年月日：反映']")
        page.wait_for_selector("text=電子カルテの変更を1件反映しました")
        expect(page.locator("#emr-changes tbody tr")).to_have_count(3)
        page.click("button[name=emr][value='dismiss:all']")
        page.wait_for_selector("text=反映しないことにしました")
        expect(page.locator("#emr-changes")).to_have_count(0)
    row = Notification.objects.get(pk=notification.pk)
    assert row.values["patient.birth_date"] == "1942-07-22" and row.values["patient.occupation"] == "会社員"
    assert [t["collection_date"] for t in row.values["tests"]] == ["2021-01-08"]
    assert set(EmrChange.objects.filter(notification=row).values_list("status", flat=True)) == {"accepted",
                                                                                                "dismissed"}


def test_emr_changes_and_conflict_panels_fit_every_width_and_pass_axe(draft_with_emr_changes, live_server, clerk,
                                                                      physician):
    """The form page's new parts (pending EMR changes, a same-field conflict) as a page type of their own."""
    from tests.portal.conftest import verified_login
    from tests.portal.test_screens_browser import DESKTOP, Screens

    url, _, _ = draft_with_emr_changes
    cookies = {u.username: verified_login(Client(), u).cookies["sessionid"].value for u in (clerk, physician)}
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as a, open_page(browser, bypass_csp=True) as b:
            for page, user in ((a, clerk), (b, physician)):
                page.context.add_cookies([{"name": "sessionid", "value": cookies[user.username],
                                           "url": live_server.url}])
                page.goto(url)
            screens.each_width(b, "form-emr-changes")
            a.fill("[name='patient.occupation']", "会社員")
            a.click("button[name=action][value=save]")
            a.wait_for_selector("text=下書きを保存しました")
            b.fill("[name='patient.occupation']", "教員")
            b.click("button[name=action][value=save]")
            b.wait_for_selector("#conflicts")
            expect(b.locator("#conflicts")).to_contain_text("会社員")
            screens.each_width(b, "form-conflict", widths=(DESKTOP, PHONE))
    screens.assert_clean()
