"""FAX is a state: 「FAXで届出済みとして記録」 holds the revision's electronic delivery (the worker never sends it) until
someone chooses 「電子送信も行う（保健所と調整済み）」 or 「FAXのみで完了」; a FAX-only revision never reaches HER-SYS
(checked against the sandbox's own records)."""
import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt, delivery_sweep
from assist_portal.notifications.models import FaxRecord
from tests.portal.test_delivery_problems import confirmed

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def queued(hospital, physician, published, django_capture_on_commit_callbacks):
    published("2021-03")
    hospital.health_centre_name = "千代田保健所"
    hospital.save()
    return confirmed(hospital, physician, django_capture_on_commit_callbacks)


def fax_post(client, n, **data):
    return client.post(reverse("notifications:fax", args=[n.uuid]), data, follow=True)


def test_fax_only_never_reaches_hersys(client, queued, clerk, login, sandbox, django_capture_on_commit_callbacks):
    n, delivery = queued
    login(client, clerk)
    status = client.get(reverse("notifications:status", args=[n.uuid])).content.decode()
    assert 'id="fax-record"' in status and 'value="千代田保健所"' in status
    with django_capture_on_commit_callbacks(execute=True):
        page = fax_post(client, n, action="record", sent_at="2021-01-10T14:30", health_centre="千代田保健所")
    assert "FAXで届出済みとして記録しました" in page.content.decode()
    record = FaxRecord.objects.get()
    assert record.recorded_by == clerk and record.health_centre == "千代田保健所" and record.decision == ""
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.HELD
    assert delivery_attempt(delivery.pk) is None  # the worker never sends a held delivery
    assert delivery_sweep() == 0  # nor does the sweeper pick it up
    worklist = client.get(reverse("notifications:list") + "?state=attention").content.decode()
    assert "FAX送付済み・電子送信の要否が未定" in worklist

    page = fax_post(client, n, action="fax_only")
    assert "FAXのみで完了しました" in page.content.decode()
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.WITHHELD
    assert delivery_attempt(delivery.pk) is None and delivery_sweep() == 0
    assert sandbox.received()["notifications"] == [] and sandbox.requests() == []  # HER-SYS never saw it
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="notification.fax").order_by("id")] == [
        "notification.fax_record", "notification.fax_decide"]
    assert AuditEvent.objects.get(action="notification.fax_decide").detail["decision"] == "fax_only"
    done = client.get(reverse("notifications:list") + "?state=accepted").content.decode()
    assert "FAXのみで完了" in done
    assert 'id="attention-banner"' not in done


def test_electronic_as_well_after_agreeing_with_the_health_centre(client, queued, physician, login, sandbox,
                                                                  django_capture_on_commit_callbacks):
    n, delivery = queued
    login(client, physician)
    fax_post(client, n, action="record", sent_at="2021-01-10T14:30", health_centre="千代田保健所")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        fax_post(client, n, action="electronic")
    assert len(callbacks) == 1  # enqueued again after commit
    assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED
    assert len(sandbox.received()["notifications"]) == 1
    assert FaxRecord.objects.get().decision == "electronic"


def test_fax_record_refusals_lose_nothing(client, hospital, clerk, physician, published, queued, login):
    n, delivery = queued
    login(client, clerk)
    for data, message in (({"sent_at": "2021-01-10T14:30", "health_centre": ""}, "保健所名"),
                          ({"sent_at": "", "health_centre": "千代田保健所"}, "日時"),
                          ({"sent_at": "2999-01-01T00:00", "health_centre": "千代田保健所"}, "未来"),
                          ({"sent_at": "2021-13-45T99:99", "health_centre": "千代田保健所"}, "日時")):
        page = fax_post(client, n, action="record", **data)
        assert message in page.content.decode()
    assert FaxRecord.objects.count() == 0 and Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.QUEUED
    assert fax_post(client, n, action="fax_only").status_code == 200 and FaxRecord.objects.count() == 0
    assert client.post(reverse("notifications:fax", args=[n.uuid]), {"action": "nonsense"}).status_code == 400


def test_an_accepted_revision_is_recorded_without_holding_anything(client, queued, clerk, login, sandbox):
    n, delivery = queued
    assert delivery_attempt(delivery.pk).status == Delivery.Status.ACCEPTED
    login(client, clerk)
    fax_post(client, n, action="record", sent_at="2021-01-10T14:30", health_centre="千代田保健所")
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.ACCEPTED
    assert FaxRecord.objects.get().decision == "electronic"


def test_another_hospital_cannot_record_a_fax(client, queued, make_user, other_hospital, login):
    n, _ = queued
    login(client, make_user("b_clerk", "clerk", other_hospital))
    assert client.post(reverse("notifications:fax", args=[n.uuid]), {"action": "record"}).status_code == 404
    assert FaxRecord.objects.count() == 0
