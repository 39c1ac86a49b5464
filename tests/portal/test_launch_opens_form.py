"""Issue 13: the EMR button's launch URL answers with the pre-filled form itself (one round trip from the hospital
terminal, not a redirect and a second request). The page is the form the form's own URL shows, whether the launch
created the notification or opened the patient's open draft; the page names the form URL as canonical (portal.js
puts it in the address bar) and posts to it; the view is audited once per page, in both cases."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent
from assist_portal.notifications.models import AutosavedInput, Notification
from tests.portal.conftest import launch_path, launched_form, push_extract, verified_login

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
_SIGNED_AT = re.compile(r'(name="base" value="[^":]*):[^"]*"')  # the base values, signed with the second of rendering


def the_form(html: str) -> str:
    """The <form> of the notification as the page renders it (the CSRF token is masked anew on every render; the
    signed base values carry the second they were signed at: their content is compared)."""
    start = html.index('id="notification-form"')
    return _SIGNED_AT.sub(r'\1"', _CSRF.sub("csrf", html[start:html.index("</form>", start)]))


def assert_same(launched: str, reopened: str) -> None:
    import difflib

    diff = list(difflib.unified_diff(launched.splitlines(), reopened.splitlines(), "launch", "form URL", lineterm="",
                                     n=1))
    assert not diff, "\n".join(diff[:40])


def launch(client, user):
    url = push_extract(client, PATIENT, "ss-mix2").json()["launch_url"]
    verified_login(client, user)
    return launched_form(client, launch_path(url))


def test_a_new_case_opens_as_the_form_url_shows_it(client, clerk, published):
    published("2021-03")
    opened = launch(client, clerk)
    notification = Notification.objects.get(patient_ref=PATIENT)
    form_url = reverse("notifications:form", args=[notification.uuid])
    assert opened.context["form_url"] == form_url
    again = client.get(form_url)
    assert_same(the_form(opened.content.decode()), the_form(again.content.decode()))
    assert "高橋" in the_form(opened.content.decode())  # pre-filled from the extract
    views = AuditEvent.objects.filter(action="notification.view", object_id=str(notification.uuid))
    assert views.count() == 2  # the launch's page and the re-open


def test_an_open_draft_opens_with_what_this_person_left_unsaved(client, clerk, published):
    published("2021-03")
    launch(client, clerk)
    draft = Notification.objects.get(patient_ref=PATIENT)
    AutosavedInput.objects.create(notification=draft, user=clerk, values={"patient.occupation": "会社員"},
                                  based_on_version=draft.lock_version)
    opened = launch(client, clerk)  # the EMR button again, same patient: the open draft, not a new one
    assert Notification.objects.filter(patient_ref=PATIENT).count() == 1
    assert opened.context["notification"].pk == draft.pk
    html = the_form(opened.content.decode())
    assert 'value="会社員"' in html  # the unsaved input is restored on the launch's page too
    assert_same(html, the_form(client.get(opened.context["form_url"]).content.decode()))


def test_a_form_page_that_fails_after_the_launch_sends_the_person_to_the_form_url(client, clerk, published,
                                                                                  monkeypatch):
    """The launch is committed before its page is rendered: if that fails, the person is sent to the form's own
    URL (which can be reloaded), never left on the spent launch URL."""
    from assist_portal.notifications import views

    published("2021-03")
    url = push_extract(client, PATIENT, "ss-mix2").json()["launch_url"]
    verified_login(client, clerk)

    def broken(request, notification):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(views, "_form_page", broken)
    response = client.get(launch_path(url))
    notification = Notification.objects.get(patient_ref=PATIENT)
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:form", args=[notification.uuid])
    monkeypatch.undo()
    assert client.get(response["Location"]).status_code == 200
