"""Permanent errors reach people instead of looping; dead letters are visible to the central admin and re-drivable,
and a re-drive delivers exactly once."""
import re

import pytest
from django.test import Client

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Attempt, Delivery
from assist_portal.delivery.services import delivery_enqueue
from tests.chaos.conftest import log_text, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def test_422_is_rejected_after_exactly_one_attempt_and_never_loops(chaos):
    """HER-SYS no longer accepts the form's item-set version (422): `rejected` after one attempt, with HER-SYS's
    Japanese diagnostics in last_error. Neither the sweeper nor a stray duplicate task sends it again."""
    worker = chaos.worker(concurrency=1)
    defaults = chaos.sandbox.set_faults()["accepted_versions"]
    chaos.sandbox.set_faults(accepted_versions=["2099-01"])
    ids = chaos.confirm(1)
    chaos.wait_status(ids, Delivery.Status.REJECTED, timeout=30)

    row = Delivery.objects.get(pk=ids[0])
    assert row.attempts == 1 and row.receipt_id == ""
    assert row.last_error.startswith("HER-SYS が届出を受理しませんでした")
    assert "2021-03" in row.last_error and JAPANESE.search(row.last_error)  # which version, in Japanese
    attempt = Attempt.objects.get(delivery=row)
    assert attempt.http_status == 422 and attempt.outcome == Attempt.Outcome.PERMANENT

    # Never looping: the sweeper does not pick it up, and a stray duplicate task is a no-op.
    assert chaos.sweep() == 0
    delivery_enqueue(row.pk)
    chaos.sandbox.set_faults(accepted_versions=defaults)
    sentinel = chaos.confirm(1)  # same single-process FIFO queue: once this is accepted, the stray task has run
    chaos.wait_status(sentinel, Delivery.Status.ACCEPTED, timeout=30)
    assert len(re.findall(r"tasks\.deliver\[[0-9a-f-]+\] succeeded in [0-9.]+s: None", log_text(worker))) == 1
    row.refresh_from_db()
    assert row.status == Delivery.Status.REJECTED and row.attempts == 1
    assert Attempt.objects.filter(delivery=row).count() == 1
    chaos.assert_exactly_once(sentinel)  # and the rejected one is not in HER-SYS at all


def test_outage_longer_than_the_retry_budget_dead_letters_then_redrive(chaos, central_admin, login):
    """With DELIVERY_MAX_ATTEMPTS=3 an outage outlasts the retry budget: every delivery ends `dead` after exactly
    3 attempts with a Japanese reason, the sweeper leaves it alone, the central admin sees it on the delivery
    monitor and re-drives it there; after the sandbox is back each is accepted exactly once."""
    chaos.worker(concurrency=2, DELIVERY_MAX_ATTEMPTS="3")
    chaos.sandbox.stop()
    try:
        ids = chaos.confirm(3)
        chaos.wait_status(ids, Delivery.Status.DEAD, timeout=30)
    finally:
        chaos.sandbox.restart()

    for row in Delivery.objects.filter(pk__in=ids):
        assert row.attempts == 3 and Attempt.objects.filter(delivery=row).count() == 3
        # a dead letter says retries stopped, what HER-SYS last answered, and what asking HER-SYS found
        assert row.last_error.startswith("自動再送を終了しました") and "HER-SYS に接続できませんでした" in row.last_error
    assert chaos.sweep() == 0  # dead letters wait for a person
    assert chaos.sandbox.received(False)["count"] == 0

    admin = login(Client(), central_admin)
    page = admin.get("/central/deliveries/?status=dead")
    assert page.status_code == 200
    html = page.content.decode()
    assert "送信停止（要対応）：3" in html
    for pk in ids:
        assert f"/central/deliveries/{pk}/redrive/" in html
        response = admin.post(f"/central/deliveries/{pk}/redrive/")
        assert response.status_code == 302
    # A second click on an already re-driven one is refused (it is no longer dead), not a second send.
    assert admin.post(f"/central/deliveries/{ids[0]}/redrive/").status_code == 404

    chaos.wait_status(ids, Delivery.Status.ACCEPTED, timeout=30)
    chaos.assert_exactly_once(ids)
    assert AuditEvent.objects.filter(action="delivery.redrive").count() == 3
    wait_for(lambda: Attempt.objects.filter(delivery_id__in=ids, outcome=Attempt.Outcome.ACCEPTED).count() == 3)
