"""Delivery problems reach people: a rejection from the real sandbox (the items it names linked to their fields), a
dead letter, no acceptance in time → 要対応 for the hospital, a banner for each of its users (never another
hospital's), one e-mail to the confirming physician and the hospital's contact (no patient value in it)."""
import copy
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.formdefs.models import FormDefinition
from assist_portal.notifications import services as nsvc
from assist_portal.notifications.alerts import overdue_alerts_send
from formengine import content_hash
from tests.conftest import DEMO_SAMPLES

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
LIST = reverse("notifications:list")


def confirmed(hospital, physician, capture, *, drop=None):
    """A confirmed notification of patient 1100000002 (optionally without the item `drop`, which the form is made
    not to require — as if HER-SYS required more than the form) and its queued delivery."""
    data = json.loads((DEMO_SAMPLES / "fhir" / "1100000002.json").read_text(encoding="utf-8"))
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref="1100000002", data=data))
    n = nsvc.notification_open_from_extract(extract, physician)
    values = dict(n.values, **{"report.diagnosis_class": "confirmed_patient"})
    if drop:
        definition = copy.deepcopy(n.definition.definition)
        for item in definition["items"]:
            if item["id"] == drop:
                item["required"] = False
                item["priority"] = False
        # other content, so another content hash (a published definition's hash is its content's)
        FormDefinition.objects.filter(pk=n.definition_id).update(definition=definition,
                                                                 content_hash=content_hash(definition))
        n.refresh_from_db()
        values.pop(drop, None)
    with capture(execute=False):
        row, evaluation, delivery = nsvc.notification_confirm(n, physician, values, n.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return row, delivery


@pytest.fixture
def staff(hospital, physician, clerk, published):
    published("2021-03")
    physician.email = "yamada@example.jp"
    physician.save()
    hospital.contact_email = "kansen@example.jp"
    hospital.save()
    return physician, clerk


def test_a_rejection_reaches_every_user_of_the_hospital_and_no_other(client, staff, hospital, sandbox, login,
                                                                     make_user, other_hospital,
                                                                     django_capture_on_commit_callbacks):
    physician, clerk = staff
    n, delivery = confirmed(hospital, physician, django_capture_on_commit_callbacks, drop="patient.sex")
    assert delivery_attempt(delivery.pk).status == Delivery.Status.REJECTED  # the real sandbox says 422
    # one e-mail, to the confirming physician and the hospital's contact, without patient values
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["kansen@example.jp", "yamada@example.jp"]
    assert "要対応" in message.subject and str(n.uuid) in message.body
    assert n.values["patient.name"] not in message.body and "1100000002" not in message.body
    assert AuditEvent.objects.filter(action="notification.alert", detail__problem="rejected").count() == 1

    # the clerk (another user of the hospital) sees the banner on any page and the case under 要対応
    login(client, clerk)
    page = client.get(LIST).content.decode()
    assert 'id="attention-banner"' in page
    assert 'data-state="attention"' in client.get(LIST + "?state=attention").content.decode()
    # the status page names the item HER-SYS cited, linked to its field on the form
    status = client.get(reverse("notifications:status", args=[n.uuid])).content.decode()
    assert f'href="/notifications/{n.uuid}/#f-patient-sex"' in status and "性別" in status
    form = client.get(reverse("notifications:form", args=[n.uuid])).content.decode()
    assert 'id="delivery-problem"' in form and "#f-patient-sex" in form and 'id="f-patient-sex' in form

    # another hospital's users see nothing of it
    login(client, make_user("b_clerk", "clerk", other_hospital))
    page = client.get(LIST + "?state=").content.decode()
    assert 'id="attention-banner"' not in page and str(n.uuid) not in page

    # reporting the same problem again does not mail again
    from assist_portal.delivery.services import _problem_announce

    _problem_announce(Delivery.objects.get(pk=delivery.pk))
    assert len(mail.outbox) == 1


def test_a_dead_letter_needs_people(client, staff, hospital, sandbox, login, settings,
                                    django_capture_on_commit_callbacks):
    physician, clerk = staff
    settings.DELIVERY_MAX_ATTEMPTS = 1
    n, delivery = confirmed(hospital, physician, django_capture_on_commit_callbacks)
    sandbox.set_faults(fail_next=1)
    with django_capture_on_commit_callbacks(execute=False):
        assert delivery_attempt(delivery.pk).status == Delivery.Status.DEAD
    assert len(mail.outbox) == 1 and "送信停止" in mail.outbox[0].body
    login(client, clerk)
    page = client.get(LIST + "?state=attention").content.decode()
    assert 'data-state="attention"' in page and "送信停止" in page


def test_not_accepted_in_time_is_told_once(client, staff, hospital, login, settings,
                                           django_capture_on_commit_callbacks):
    physician, clerk = staff
    settings.ACCEPTANCE_ALERT_MINUTES = 30
    n, delivery = confirmed(hospital, physician, django_capture_on_commit_callbacks)
    assert overdue_alerts_send() == 0  # just confirmed
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(minutes=31))
    assert overdue_alerts_send() == 1 and overdue_alerts_send() == 0
    assert len(mail.outbox) == 1 and "まだHER-SYSに受理されていません" in mail.outbox[0].body
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.ACCEPTED)
    login(client, clerk)
    assert 'id="attention-banner"' not in client.get(LIST).content.decode()  # accepted now: nothing to do


def test_without_addresses_nobody_is_mailed_but_the_banner_shows(client, hospital, physician, clerk, published,
                                                                 sandbox, login, django_capture_on_commit_callbacks):
    published("2021-03")
    n, delivery = confirmed(hospital, physician, django_capture_on_commit_callbacks, drop="patient.sex")
    delivery_attempt(delivery.pk)
    assert mail.outbox == []
    assert AuditEvent.objects.get(action="notification.alert").detail["recipients"] == 0
    login(client, clerk)
    assert 'id="attention-banner"' in client.get(LIST).content.decode()


def test_the_hospital_contact_address_is_checked(hospital, central_admin):
    from assist_portal.accounts.admin_services import AccountError, hospital_update

    fields = {f: getattr(hospital, f) for f in ("name", "address", "phone", "health_centre_code",
                                                "health_centre_name")}
    with pytest.raises(AccountError, match="メールアドレス"):
        hospital_update(hospital, by=central_admin, contact_email="not an address", **fields)
    hospital_update(hospital, by=central_admin, contact_email="kansen@example.jp", **fields)
    hospital.refresh_from_db()
    assert hospital.contact_email == "kansen@example.jp"
