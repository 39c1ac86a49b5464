"""Issue 12: the product asks HER-SYS what it holds before it gives up, and never lets HER-SYS keep old values
behind a 受理 for new ones. Real sandbox over mutual TLS; people's view through HTTP."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from assist_portal.delivery.models import Attempt, Delivery
from assist_portal.delivery.services import delivery_attempt, delivery_check, delivery_sweep, hersys_client
from assist_portal.notifications import services as nsvc
from assist_portal.notifications.models import Notification
from tests.conftest import DEMO_SAMPLES
from tests.portal.conftest import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

SAMPLE = json.loads((DEMO_SAMPLES / "fhir" / "1100000002.json").read_text(encoding="utf-8"))


def confirm(hospital, physician, capture, patient_ref="1100000002", change=None):
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=patient_ref,
                                                                 data=SAMPLE))
    with capture(execute=False):
        notification = nsvc.notification_open_from_extract(extract, physician)
        values = dict(notification.values)
        values["report.diagnosis_class"] = "confirmed_patient"
        values.update(change or {})
        row, evaluation, delivery = nsvc.notification_confirm(notification, physician, values,
                                                              notification.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return row, delivery


def reconfirm(row, physician, capture, change):
    row = Notification.objects.get(pk=row.pk)
    values = {**row.values, **change}
    with capture(execute=False):
        row, evaluation, delivery = nsvc.notification_confirm(row, physician, values, row.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return row, delivery


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def test_reused_key_with_other_content_is_refused_and_shown_to_people(hospital, physician, published, sandbox,
                                                                       capture, client, login):
    """A delivery made before keys covered the content (`<uuid>:<revision>`) meets HER-SYS holding other content
    under that very key (the restore case: the old values were sent before the backup was restored). HER-SYS
    refuses (409), the delivery ends rejected with a Japanese explanation the physician sees — never 受理 with a
    receipt that stands for the old values."""
    published("2021-03")
    notification, delivery = confirm(hospital, physician, capture)
    Delivery.objects.filter(pk=delivery.pk).update(idempotency_key=f"{notification.uuid}:1")  # the legacy format
    # What HER-SYS got earlier under that key: the same notification and revision with another address.
    old_body = json.loads(bytes(delivery.payload.content))
    for entry in old_body["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["address"][0]["text"] = "東京都千代田区霞が関１－２－２"
    earlier = hersys_client().submit(old_body, f"{notification.uuid}:1")

    row = delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.REJECTED
    assert row.receipt_id == ""  # the receipt HER-SYS has stands for other values
    assert row.hersys_check == Delivery.Check.OTHER and row.hersys_revision == 1
    assert earlier.receipt_id in row.last_error and "別の内容" in row.last_error
    attempt = Attempt.objects.get(delivery=delivery)
    assert (attempt.outcome, attempt.http_status) == (Attempt.Outcome.PERMANENT, 409)
    [held] = sandbox.received()["notifications"]
    assert held["revisions"][0]["bundle"] == old_body  # nothing overwritten, nothing stored twice

    login(client, physician)
    page = client.get(f"/notifications/{notification.uuid}/status/").content.decode()
    assert "差戻し" in page and "別の内容" in page and earlier.receipt_id in page
    state = client.get(f"/notifications/{notification.uuid}/status.json").json()
    assert state["status"] == "rejected" and "もう一度確定" in state["guidance"]

    # Confirming again sends the new values as an update above what HER-SYS holds: HER-SYS ends with them.
    _, again = reconfirm(notification, physician, capture, {})
    assert again.sequence == 2
    assert delivery_attempt(again.pk).status == Delivery.Status.ACCEPTED
    [held] = sandbox.received()["notifications"]
    assert held["revision"] == 2 and held["revisions"][1]["questionnaire_status"] == "amended"
    patient = next(e["resource"] for e in held["revisions"][1]["bundle"]["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    assert patient["address"][0]["text"] != "東京都千代田区霞が関１－２－２"


def test_dead_letter_candidate_that_hersys_holds_ends_accepted_with_its_receipt(hospital, physician, published,
                                                                                 sandbox, capture, settings):
    """Attempt 1 times out on our side while HER-SYS stores it; attempt 2 gets a 503 and spends the budget. Before
    making it a dead letter (and telling the physician to fax), the worker asks HER-SYS: it holds this revision
    with this content, so the delivery is accepted with HER-SYS's receipt."""
    published("2021-03")
    settings.HERSYS_TIMEOUT_SECONDS = 1
    settings.DELIVERY_MAX_ATTEMPTS = 2
    hersys_client.cache_clear()
    notification, delivery = confirm(hospital, physician, capture)
    hersys_client()._access_token()  # the token first: the latency below is meant for the submission
    sandbox.set_faults(latency_ms=1500)
    first = delivery_attempt(delivery.pk)
    assert first.status == Delivery.Status.RETRYING and "タイムアウト" in first.last_error
    stored = wait_for(lambda: sandbox.received(False)["notifications"], timeout=10, interval=0.1)
    sandbox.set_faults(latency_ms=0, fail_next=1)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    row = delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.ACCEPTED
    assert row.receipt_id == stored[0]["receipt_id"] and row.report_date is not None
    assert row.hersys_check == Delivery.Check.HELD and row.last_error == ""
    outcomes = list(Attempt.objects.filter(delivery=delivery).values_list("outcome", flat=True))
    assert outcomes == [Attempt.Outcome.RETRYABLE, Attempt.Outcome.RECONCILED]
    assert len(sandbox.received(False)["notifications"]) == 1


def test_dead_letter_after_asking_says_so_and_never_promises_a_retry(hospital, physician, published, sandbox,
                                                                     capture, settings, client, login):
    published("2021-03")
    settings.DELIVERY_MAX_ATTEMPTS = 1
    notification, delivery = confirm(hospital, physician, capture)
    sandbox.set_faults(fail_next=1)
    row = delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.DEAD
    assert row.hersys_check == Delivery.Check.ABSENT  # asked: HER-SYS does not have it
    assert "再送します" not in row.last_error and "自動再送を終了" in row.last_error
    login(client, physician)
    state = client.get(f"/notifications/{notification.uuid}/status.json").json()
    assert state["fax_offer"] is True and "届いていないことを確認" in state["guidance"]


def test_late_delivery_is_checked_before_the_fax_is_offered(hospital, physician, published, sandbox, capture,
                                                            settings, client, login):
    """The sweeper asks HER-SYS about deliveries late enough for the fax advice; HER-SYS holding the revision
    (stored by an attempt whose answer was lost) ends it accepted, without a send."""
    published("2021-03")
    notification, delivery = confirm(hospital, physician, capture)
    login(client, physician)
    settings.DELIVERY_DELAYED_SECONDS = 600
    old = timezone.now() - timedelta(seconds=700)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=old, status=Delivery.Status.RETRYING,
                                                   next_attempt_at=timezone.now() + timedelta(seconds=240))
    state = client.get(f"/notifications/{notification.uuid}/status.json").json()
    assert state["state"] == "delayed" and state["label"] == "送信遅延"
    assert state["fax_offer"] is False and "照会しています" in state["guidance"]  # not before asking

    # HER-SYS got the bytes (an earlier attempt whose answer was lost).
    receipt = hersys_client().submit_bytes(bytes(delivery.payload.content), delivery.idempotency_key)
    from unittest import mock
    with mock.patch("assist_portal.delivery.services.delivery_check_enqueue") as enqueue:
        delivery_sweep()
    assert [c.args[0] for c in enqueue.call_args_list] == [delivery.pk]
    row = delivery_check(delivery.pk)
    assert row.status == Delivery.Status.ACCEPTED and row.receipt_id == receipt.receipt_id
    requests = sandbox.requests(include_bodies=False)
    assert len(requests) == 1  # only our own simulated earlier send: the check sent nothing


def test_late_delivery_not_held_offers_the_fax_after_asking(hospital, physician, published, sandbox, capture,
                                                            settings, client, login):
    published("2021-03")
    notification, delivery = confirm(hospital, physician, capture)
    login(client, physician)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=700),
                                                   status=Delivery.Status.RETRYING,
                                                   next_attempt_at=timezone.now() + timedelta(seconds=240))
    row = delivery_check(delivery.pk)
    assert row.status == Delivery.Status.RETRYING and row.hersys_check == Delivery.Check.ABSENT
    state = client.get(f"/notifications/{notification.uuid}/status.json").json()
    assert state["fax_offer"] is True and "まだ届いていないことを確認" in state["guidance"]
    page = client.get(f"/notifications/{notification.uuid}/status/").content.decode()
    assert 'id="fax-offer" class="card warning" hidden' not in page and "紙の様式（別記様式）を印刷" in page


def test_killed_attempt_is_closed_as_abandoned_and_never_shown_as_sending(hospital, physician, published, sandbox,
                                                                          capture, client, login):
    """A worker died mid-send: its attempt stays `started` and the row `sending` until the lease runs out. While
    the lease runs, people see 送信中; after it, 再送待ち (not 送信中), and the sweeper closes the attempt as
    `abandoned`; the next attempt replays the same key."""
    published("2021-03")
    notification, delivery = confirm(hospital, physician, capture)
    login(client, physician)
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING, attempts=1,
                                                   lease_until=now + timedelta(seconds=60))
    dead = Attempt.objects.create(delivery=delivery, number=1, worker="gone:1")
    state = client.get(f"/notifications/{notification.uuid}/status.json").json()
    assert (state["state"], state["label"]) == ("sending", "送信中")

    Delivery.objects.filter(pk=delivery.pk).update(lease_until=now - timedelta(seconds=1))
    state = client.get(f"/notifications/{notification.uuid}/status.json").json()
    assert state["label"] != "送信中" and state["state"] == "interrupted" and "二重に登録" in state["guidance"]

    from unittest import mock
    with mock.patch("assist_portal.delivery.services.delivery_enqueue") as enqueue:
        assert delivery_sweep() == 1
    assert [c.args[0] for c in enqueue.call_args_list] == [delivery.pk]
    dead.refresh_from_db()
    assert dead.outcome == Attempt.Outcome.ABANDONED and dead.finished_at is not None and dead.message
    row = delivery_attempt(delivery.pk)
    assert row.status == Delivery.Status.ACCEPTED
    assert list(Attempt.objects.filter(delivery=delivery).values_list("outcome", flat=True)) == [
        Attempt.Outcome.ABANDONED, Attempt.Outcome.ACCEPTED]


def test_wording_follows_elapsed_time(hospital, physician, published, sandbox, capture, settings):
    from assist_portal.notifications.selectors import delivery_wording

    published("2021-03")
    _, delivery = confirm(hospital, physician, capture)
    delivery.refresh_from_db()
    now = delivery.created_at
    assert "数秒" in delivery_wording(delivery, now + timedelta(seconds=5))["guidance"]
    later = delivery_wording(delivery, now + timedelta(seconds=180))
    assert "数秒" not in later["guidance"] and "3分" in later["guidance"] and later["label"] == "送信待ち"
    settings.DELIVERY_DELAYED_SECONDS = 300
    late = delivery_wording(delivery, now + timedelta(seconds=301))
    assert late["state"] == "delayed" and late["fax_offer"] is False  # not asked yet
    much_later = delivery_wording(delivery, now + timedelta(seconds=601))
    assert much_later["fax_offer"] is True and "確認できていません" in much_later["guidance"]  # asking impossible
    delivery.status, delivery.next_attempt_at, delivery.attempts = Delivery.Status.RETRYING, now, 3
    retrying = delivery_wording(delivery, now + timedelta(seconds=60))
    assert "次回" in retrying["guidance"] and "3回" in retrying["guidance"]


def test_monitor_shows_age_next_attempt_oldest_per_hospital_and_resumes_a_stuck_row(
        hospital, physician, published, sandbox, capture, client, login, central_admin):
    published("2021-03")
    _, stuck = confirm(hospital, physician, capture, patient_ref="P-STUCK")
    _, waiting = confirm(hospital, physician, capture, patient_ref="P-WAIT")
    now = timezone.now()
    Delivery.objects.filter(pk=stuck.pk).update(status=Delivery.Status.SENDING, attempts=1,
                                                created_at=now - timedelta(minutes=50),
                                                lease_until=now - timedelta(minutes=47))
    Attempt.objects.create(delivery=stuck, number=1, worker="gone:1")
    Delivery.objects.filter(pk=waiting.pk).update(status=Delivery.Status.RETRYING, attempts=2,
                                                  created_at=now - timedelta(minutes=5),
                                                  next_attempt_at=now + timedelta(minutes=4))
    login(client, central_admin)
    page = client.get("/central/deliveries/").content.decode()
    assert "医療機関ごとの未完了の送信" in page and "2件" in page and "50分" in page  # oldest pending of H0001
    stuck_row = page[page.index(f"<tr class=\"stuck\"><td>{stuck.pk}</td>"):]
    stuck_row = stuck_row[:stuck_row.index("</tr>")]
    assert "停滞" in stuck_row and "47分超過" in stuck_row and "今すぐ再送" in stuck_row
    waiting_row = page[page.index(f"<td>{waiting.pk}</td>"):]
    waiting_row = waiting_row[:waiting_row.index("</tr>")]
    assert "停滞" not in waiting_row and ("4分後" in waiting_row or "3分後" in waiting_row)

    from unittest import mock
    with mock.patch("assist_portal.delivery.services.delivery_enqueue") as enqueue, capture(execute=True):
        response = client.post(f"/central/deliveries/{stuck.pk}/resume/")
    assert response.status_code == 302
    assert [c.args[0] for c in enqueue.call_args_list] == [stuck.pk]
    assert Attempt.objects.get(delivery=stuck).outcome == Attempt.Outcome.ABANDONED
    assert delivery_attempt(stuck.pk).status == Delivery.Status.ACCEPTED
    # An accepted delivery needs no resume: refused with a message, nothing enqueued.
    with mock.patch("assist_portal.delivery.services.delivery_enqueue") as enqueue:
        client.post(f"/central/deliveries/{stuck.pk}/resume/")
    assert enqueue.call_count == 0
