"""Issue 9 — Q&A 7: an EMR launch for a patient with an earlier notification asks whether it updates that case
or starts a new one (reinfection, another episode), preselecting what CASE_REOPEN_DAYS suggests; the choice is the
person's, it overrides the window either way, and it is audited."""
from __future__ import annotations

import pytest
from django.utils import timezone

from assist_portal.audit.models import AuditEvent
from assist_portal.notifications.models import EmrChange, Notification
from tests.portal.conftest import confirm_post, launch_path, launched_form
from tests.portal.test_workflow import filled_values, form_post

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"


@pytest.fixture
def confirmed(client, physician, published, push, login, django_capture_on_commit_callbacks):
    published("2021-03")
    login(client, physician)
    client.get(launch_path(push(client, PATIENT).json()["launch_url"]))
    n = Notification.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        assert confirm_post(client, n, form_post(n, filled_values(n), "confirm")).status_code == 302
    n.refresh_from_db()
    assert n.status == "confirmed"
    return n


def relaunch(client, push, fmt="fhir") -> str:
    return launch_path(push(client, PATIENT, fmt).json()["launch_url"])


def test_within_the_window_same_case_is_preselected_and_a_new_case_can_be_chosen(client, confirmed, push,
                                                                                   physician):
    from tests.portal.test_emr_updates import bundle, newer_bundle, push_data

    # The connector pushes a newer extract (another episode): offered on the earlier case until someone says
    # it is a new case.
    url = launch_path(push_data(client, "fhir", newer_bundle(bundle())).json()["launch_url"])
    assert EmrChange.objects.filter(notification=confirmed, status="pending").exists()
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "同じ症例の更新ですか、新しい症例ですか" in html
    assert 'value="same" id="case-same" checked' in html and "患者（確定例）" in html
    assert Notification.objects.count() == 1  # nothing opened, the URL not spent yet
    response = client.post(url, {"case": "new", "suggested": "same"})
    assert response.status_code == 302
    new = Notification.objects.exclude(pk=confirmed.pk).get()
    assert response["Location"].endswith(f"/notifications/{new.uuid}/") and new.status == "draft"
    # the earlier case is left alone: what this extract offered there is withdrawn (superseded)
    assert not EmrChange.objects.filter(notification=confirmed, status="pending").exists()
    assert EmrChange.objects.filter(notification=confirmed, status="superseded").exists()
    event = AuditEvent.objects.get(action="launch.case_choice")
    assert event.detail == {"choice": "new", "suggested": "same"} and event.object_id == str(new.uuid)
    assert event.actor_username == physician.username
    assert client.post(url, {"case": "same"}).status_code == 400  # single use, as ever


def test_beyond_the_window_new_case_is_preselected_and_same_case_reopens_it(client, confirmed, push, settings):
    Notification.objects.filter(pk=confirmed.pk).update(
        created_at=timezone.now() - timezone.timedelta(days=settings.CASE_REOPEN_DAYS + 1))
    url = relaunch(client, push)
    html = client.get(url).content.decode()
    assert 'value="new" id="case-new" checked' in html and f"{settings.CASE_REOPEN_DAYS}日を超えている" in html
    response = client.post(url, {"case": "same", "suggested": "new"})
    assert response["Location"].endswith(f"/notifications/{confirmed.uuid}/")
    assert Notification.objects.count() == 1
    assert AuditEvent.objects.get(action="launch.case_choice").detail == {"choice": "same", "suggested": "new"}


def test_an_open_draft_is_opened_without_a_question(client, physician, published, push, login):
    published("2021-03")
    login(client, physician)
    client.get(relaunch(client, push))
    draft = Notification.objects.get()
    response = launched_form(client, relaunch(client, push))
    assert response.context["notification"].pk == draft.pk
    assert response.context["form_url"].endswith(f"/notifications/{draft.uuid}/")
    assert not AuditEvent.objects.filter(action="launch.case_choice").exists()


@pytest.mark.e2e
@pytest.mark.integration
def test_the_case_question_fits_every_width_and_passes_axe(live_server, settings, client, confirmed, push,
                                                           physician):
    from django.test import Client

    from tests.portal.browser import chromium, open_page
    from tests.portal.conftest import verified_login
    from tests.portal.test_screens_browser import Screens

    settings.PUBLIC_BASE_URL = live_server.url
    url = relaunch(client, push)
    session = verified_login(Client(), physician).cookies["sessionid"].value
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as page:
            page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            screens.visit(page, "launch-case", url)
            page.check("#case-same")
            page.click("#launch-open")
            page.wait_for_url(f"**/notifications/{confirmed.uuid}/")
    screens.assert_clean()
