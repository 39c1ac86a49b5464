"""Issue 4: one publish changes every hospital's form. H0001 moves from 2021-03 to 2022-09 by publishing alone."""
import pytest
from django.urls import reverse

from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.formdefs.models import FormDefinition
from assist_portal.formdefs.selectors import definition_for_hospital
from assist_portal.notifications.models import Notification
from tests.portal.conftest import confirm_post, launch_path, launched_form
from tests.portal.test_workflow import filled_values, form_post

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
ELDERLY = "1100000002"  # born 1942, admitted


def open_draft(client, push, patient, key="key-h0001"):
    response = push(client, patient, "ss-mix2", key=key)
    assert response.status_code == 201
    launched_form(client, launch_path(response.json()["launch_url"]))
    return Notification.objects.filter(patient_ref=patient).order_by("-id").first()


def publish_2022_09_for(client, central_admin, login, hospitals):
    login(client, central_admin)
    response = client.post(reverse("central:new"), {"source": "builtin", "version": "2022-09"})
    assert response.status_code == 302
    draft = FormDefinition.objects.get(version="2022-09")
    response = client.post(reverse("central:publish", args=[draft.pk]),
                           {"scope": "subset", "hospitals": [h.pk for h in hospitals]})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_published
    return draft


def test_switch_h0001_to_2022_09_only_by_publishing(client, hospital, other_hospital, physician, central_admin,
                                                   published, push, login, sandbox,
                                                   django_capture_on_commit_callbacks):
    old = published("2021-03")
    # A notification confirmed under 2021-03 keeps its version.
    login(client, physician)
    confirmed = open_draft(client, push, "9400000001")
    with django_capture_on_commit_callbacks(execute=False):
        r = confirm_post(client, confirmed, form_post(confirmed, filled_values(confirmed), "confirm"))
    assert r.status_code == 302, r.content.decode()[:2000]
    # A draft in flight under 2021-03.
    draft = open_draft(client, push, ELDERLY)
    young = open_draft(client, push, "2200000007")
    assert draft.definition_id == old.pk

    new = publish_2022_09_for(client, central_admin, login, [hospital])
    login(client, physician)

    assert definition_for_hospital(hospital).pk == new.pk
    assert definition_for_hospital(other_hospital).pk == old.pk  # not in the subset
    confirmed.refresh_from_db()
    assert confirmed.definition_id == old.pk
    draft.refresh_from_db()
    assert draft.definition_id == new.pk
    assert "report.notification_target" in draft.migration_report["report"]["newly_required"]
    young.refresh_from_db()
    assert "report.notification_target" in young.migration_report["report"]["missing_required"]
    young_html = client.get(reverse("notifications:form", args=[young.uuid])).content.decode()
    assert "未入力の必須項目" in young_html and "発生届の対象" in young_html

    # The live form gains the target-group item, the draft reports the new missing item, suggestions show.
    html = client.get(reverse("notifications:form", args=[draft.uuid])).content.decode()
    assert 'name="report.notification_target"' in html
    assert 'id="migration-report"' in html and "2022-09" in html
    assert "65歳以上" in html  # age ≥ 65 pre-filled
    assert 'data-suggestion="report.notification_target"' in html
    assert "入院を要する者" in html  # suggested from the admission

    # Confirm with the target group: the sandbox accepts the new shape.
    with django_capture_on_commit_callbacks(execute=False):
        values = filled_values(draft)
        values["report.notification_target"] = ["age65_plus", "hospitalization_required"]
        r = confirm_post(client, draft, form_post(draft, values, "confirm"))
    assert r.status_code == 302, r.content.decode()[:3000]
    delivery = draft.revisions.get().delivery
    assert delivery_attempt(delivery.pk).status == "accepted"
    stored = sandbox.received(include_bundles=True)["notifications"]
    qr = next(e["resource"] for e in stored[-1]["revisions"][0]["bundle"]["entry"]
              if e["resource"]["resourceType"] == "QuestionnaireResponse")
    assert qr["questionnaire"].endswith("|2022-09")


def test_case_in_none_of_the_four_groups_is_not_notifiable(client, hospital, physician, central_admin, published,
                                                           push, login):
    published("2021-03")
    publish_2022_09_for(client, central_admin, login, [hospital])
    login(client, physician)
    young = "2200000007"  # not admitted, younger than 65
    notification = open_draft(client, push, young)
    values = filled_values(notification)
    values.pop("report.notification_target", None)
    values["care.hospitalized"] = "no"
    values.pop("care.admission_date", None)
    values["report.notification_target"] = ""
    r = confirm_post(client, notification, form_post(notification, values, "confirm"))
    assert r.status_code == 400
    assert "対象外" in r.content.decode()
    assert Delivery.objects.count() == 0


def test_scheduled_publish_takes_effect_later(client, hospital, physician, central_admin, published, push, login):
    from datetime import timedelta

    from django.utils import timezone

    old = published("2021-03")
    login(client, physician)
    draft = open_draft(client, push, ELDERLY)
    login(client, central_admin)
    client.post(reverse("central:new"), {"source": "builtin", "version": "2022-09"})
    new_def = FormDefinition.objects.get(version="2022-09")
    when = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(reverse("central:publish", args=[new_def.pk]), {"scope": "all", "effective_from": when})
    assert r.status_code == 302
    assert definition_for_hospital(hospital).pk == old.pk
    draft.refresh_from_db()
    assert draft.definition_id == old.pk
    later = timezone.now() + timedelta(days=1, minutes=1)
    assert definition_for_hospital(hospital, at=later).pk == new_def.pk
    # When the date comes, the draft moves on its next opening.
    from assist_portal.formdefs.models import FormAssignment

    FormAssignment.objects.filter(definition=new_def).update(effective_from=timezone.now())
    login(client, physician)
    html = client.get(reverse("notifications:form", args=[draft.uuid])).content.decode()
    draft.refresh_from_db()
    assert draft.definition_id == new_def.pk and 'id="migration-report"' in html
