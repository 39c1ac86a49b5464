# ruff: noqa: F811 (the `launched` fixture is imported from test_workflow)
"""確定 goes through a review step: validation first, then exactly what will be sent (medical items first, dates as
people read them, an amendment's diff), explicit answers for empty medical items, the physician, a recent second
factor; the revision keeps what the physician saw."""
import time

import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Delivery
from assist_portal.notifications import services as nsvc
from tests.portal.conftest import confirm_post, current_totp
from tests.portal.test_workflow import filled_values, form_post, launched  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
MEDICAL_EMPTY = ("care.icu", "care.ventilator", "care.ecmo")


def open_review(client, n, values=None):
    n.refresh_from_db()
    response = client.post(reverse("notifications:form", args=[n.uuid]),
                           form_post(n, values or filled_values(n), "confirm"))
    assert response.status_code == 302 and response["Location"] == reverse("notifications:review", args=[n.uuid]), \
        response.content.decode()[:2000]
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page


def final_post(client, n, page, **extra):
    review = page.context["review"]
    data = {"lock_version": page.context["lock_version"], "digest": review.digest, "action": "confirm"}
    data.update(extra)
    return client.post(reverse("notifications:review", args=[n.uuid]), data)


def answers_for(page, answer="unknown"):
    return {need["field"]: answer for need in page.context["review"].needs_answer}


def test_confirm_validates_first_then_shows_what_will_be_sent(client, launched, physician, login):
    login(client, physician)
    page = open_review(client, launched)
    html = page.content.decode()
    assert Delivery.objects.count() == 0  # nothing sent before the final click
    assert "確定前の確認" in html and 'id="final-confirm"' in html
    assert "1942年7月21日" in html and "1942-07-21" not in html  # as a person reads it
    assert html.index('id="review-medical"') < html.index("review-section")  # medical judgement first
    assert "患者（確定例）" in html  # the code's label, not the code
    review = page.context["review"]
    assert {n["id"] for n in review.needs_answer} >= set(MEDICAL_EMPTY)
    # a validation error goes back to the form with its summary, never to the review
    values = filled_values(launched)
    values["report.diagnosis_class"] = ""
    launched.refresh_from_db()
    back = client.post(reverse("notifications:form", args=[launched.uuid]), form_post(launched, values, "confirm"))
    assert back.status_code == 400 and 'id="error-summary"' in back.content.decode()


def test_empty_medical_items_need_an_explicit_answer(client, launched, physician, login,
                                                     django_capture_on_commit_callbacks):
    login(client, physician)
    page = open_review(client, launched)
    change = {"change_physician": "1"} if page.context["review"].physician_differs else {}
    refused = final_post(client, launched, page, **change)
    assert refused.status_code == 400 and "「不明」または「該当なし」を選んでください" in refused.content.decode()
    assert Delivery.objects.count() == 0
    answers = answers_for(page)
    answers["answer-care.icu"] = "not_applicable"
    with django_capture_on_commit_callbacks(execute=False):
        done = final_post(client, launched, page, **answers, **change)
    assert done.status_code == 302 and done["Location"] == reverse("notifications:status", args=[launched.uuid])
    revision = launched.revisions.get()
    assert revision.review["answers"]["care.icu"] == "not_applicable"
    assert revision.review["answers"]["care.ecmo"] == "unknown"
    assert revision.reviewed_sha256 == page.context["review"].digest
    shown = {line["label"]: line["display"] for line in revision.review["shown"]}
    assert shown["生年月日"] == "1942年7月21日"  # the revision keeps what the physician saw
    event = AuditEvent.objects.filter(action="notification.confirm").get()
    assert event.detail["answers"]["care.icu"] == "not_applicable" and event.detail["reviewed_sha256"]


def test_a_different_diagnosing_physician_must_be_changed_explicitly(client, launched, physician, login,
                                                                     django_capture_on_commit_callbacks):
    login(client, physician)
    values = filled_values(launched)
    values["report.physician_name"] = "藤井　誠"  # the EMR's diagnosing physician
    page = open_review(client, launched, values)
    html = page.content.decode()
    assert 'id="physician-differs"' in html and "藤井　誠" in html and "山田　一郎" in html
    refused = final_post(client, launched, page, **answers_for(page))
    assert refused.status_code == 400 and "届出の医師" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        done = final_post(client, launched, page, change_physician="1", **answers_for(page))
    assert done.status_code == 302
    launched.refresh_from_db()
    assert launched.values["report.physician_name"] == "山田　一郎"
    assert launched.provenance["report.physician_name"] == f"typed:{physician.username}"
    assert launched.revisions.get().review["physician_in_form"] == "藤井　誠"


def test_the_final_click_needs_a_recent_second_factor(client, launched, physician, login, settings,
                                                      django_capture_on_commit_callbacks):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.OTP_RECHECK_MINUTES = 10
    login(client, physician)
    session = client.session
    session["otp_verified_at"] = time.time() - 11 * 60  # signed in 11 minutes ago
    session.save()
    page = open_review(client, launched)
    assert page.context["otp_needed"] and 'name="otp_token"' in page.content.decode()
    extra = {**answers_for(page), "change_physician": "1"}
    missing = final_post(client, launched, page, **extra)
    assert missing.status_code == 400 and "ワンタイムパスワードをもう一度入力" in missing.content.decode()
    wrong = final_post(client, launched, page, otp_token="000000" if current_totp(
        TOTPDevice.objects.get(user=physician)) != "000000" else "111111", **extra)
    assert wrong.status_code == 400 and AuditEvent.objects.filter(action="otp.recheck_failure").count() == 1
    assert Delivery.objects.count() == 0
    device = TOTPDevice.objects.get(user=physician)
    device.throttle_reset()  # django-otp makes the next try wait a moment after a wrong code; that moment passed
    with django_capture_on_commit_callbacks(execute=False):
        done = final_post(client, launched, page, otp_token=current_totp(device),
                          **extra)
    assert done.status_code == 302 and Delivery.objects.count() == 1
    assert AuditEvent.objects.filter(action="otp.recheck").count() == 1
    # the service refuses a confirmation without a recent second factor whatever the caller
    with pytest.raises(nsvc.ReviewIncomplete):
        nsvc.notification_confirm_reviewed(launched, physician, lock_version=launched.lock_version, digest="x",
                                           answers={}, change_physician=True, second_factor_fresh=False,
                                           second_factor_at=time.time() - 3600)


def test_a_change_after_the_review_opened_is_not_confirmed_unseen(client, launched, physician, clerk, login):
    login(client, physician)
    page = open_review(client, launched)
    # meanwhile a clerk saves a change (the physician has not seen it)
    from django.test import Client

    other = Client()
    login(other, clerk)
    launched.refresh_from_db()
    values = filled_values(launched)
    values["patient.occupation"] = "教員"
    assert other.post(reverse("notifications:form", args=[launched.uuid]), form_post(launched, values)).status_code == 302
    response = final_post(client, launched, page, change_physician="1", **answers_for(page))
    assert response.status_code == 302 and response["Location"] == reverse("notifications:review", args=[launched.uuid])
    assert Delivery.objects.count() == 0
    assert "教員" in client.get(response["Location"]).content.decode()  # shown again, with the change


def test_an_amendment_shows_its_diff_against_the_last_confirmed_revision(client, launched, physician, login,
                                                                         django_capture_on_commit_callbacks):
    login(client, physician)
    with django_capture_on_commit_callbacks(execute=False):
        assert confirm_post(client, launched, form_post(launched, filled_values(launched), "confirm")).status_code == 302
    launched.refresh_from_db()
    values = filled_values(launched)
    values["patient.occupation"] = "看護師"
    page = open_review(client, launched, values)
    html = page.content.decode()
    assert 'id="review-diff"' in html and "修正を確定してHER-SYSへ送信" in html
    diff = {d["label"]: (d["before"], d["after"]) for d in page.context["review"].diff}
    assert diff == {"当該者職業": ("", "看護師")}
    with django_capture_on_commit_callbacks(execute=False):
        assert final_post(client, launched, page, **answers_for(page)).status_code == 302
    assert launched.revisions.order_by("-number").first().review["diff"] == [
        {"label": "当該者職業", "before": "", "after": "看護師"}]


def test_a_clerk_cannot_open_the_review(client, launched, clerk, login):
    login(client, clerk)
    assert client.get(reverse("notifications:review", args=[launched.uuid])).status_code == 403


def test_the_rest_can_be_answered_unknown_in_one_deliberate_choice(client, launched, physician, login,
                                                                  django_capture_on_commit_callbacks):
    login(client, physician)
    page = open_review(client, launched)
    assert 'name="answer_rest"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        done = final_post(client, launched, page, answer_rest="unknown", change_physician="1",
                          **{"answer-care.icu": "not_applicable"})
    assert done.status_code == 302
    answers = launched.revisions.get().review["answers"]
    assert answers["care.icu"] == "not_applicable" and answers["care.ecmo"] == "unknown"
    assert set(answers) == {n["id"] for n in page.context["review"].needs_answer}
