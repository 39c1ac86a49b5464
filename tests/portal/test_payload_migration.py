"""Existing databases: the migrations freeze the document of every revision already confirmed (best effort), keep
the idempotency keys HER-SYS may already know, and leave the models and migrations in step."""
import hashlib
import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = [pytest.mark.django_db(transaction=True)]
BEFORE = [("notifications", "0003_purge_and_unique_draft"), ("delivery", "0003_redriven_at")]
VALUES = {"patient.name": "移行　太郎", "patient.sex": "male", "patient.birth_date": "1980-04-01",
          "report.diagnosis_class": "confirmed_patient", "report.physician_name": "山田　一郎"}


def test_models_and_migrations_are_in_step():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # SystemExit(1) on pending changes


def test_existing_revisions_are_frozen_and_keep_their_keys(client, hospital, physician, published):
    from assist_portal.delivery.services import delivery_attempt

    definition = published("2021-03")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    Notification = old.get_model("notifications", "Notification")
    Revision = old.get_model("notifications", "NotificationRevision")
    Delivery = old.get_model("delivery", "Delivery")
    confirmed_at = timezone.now() - timezone.timedelta(days=3)

    def old_row(*, kind="completed", values=VALUES, purged_at=None, status="accepted"):
        n = Notification.objects.create(uuid=uuid.uuid4(), hospital_id=hospital.pk, patient_ref="P1",
                                        definition_id=definition.pk, values=values, provenance={},
                                        status="confirmed", revision=1, purged_at=purged_at, display_name="")
        r = Revision.objects.create(notification=n, number=1, kind=kind, definition_id=definition.pk,
                                    values=values, confirmed_by_id=physician.pk, confirmed_at=confirmed_at)
        d = Delivery.objects.create(revision=r, hospital_id=hospital.pk, idempotency_key=f"{n.uuid}:1",
                                    status=status, receipt_id="HS-0000000001" if status == "accepted" else "")
        return n.uuid, d.pk

    sent, sent_delivery = old_row()
    purged, _ = old_row(values={}, purged_at=timezone.now())
    broken, broken_delivery = old_row(kind="bogus", status="queued")  # the builder refuses it

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from assist_portal.delivery.models import Delivery as DeliveryNow
    from assist_portal.notifications.models import NotificationRevision

    rev = NotificationRevision.objects.select_related("payload", "delivery").get(notification__uuid=sent)
    bundle = json.loads(rev.payload.content)
    assert bundle["identifier"]["value"] == str(sent) and bundle["meta"]["versionId"] == "1"
    assert hashlib.sha256(rev.payload.content).hexdigest() == rev.payload.sha256
    assert bundle["timestamp"].startswith(timezone.localdate(confirmed_at).isoformat())
    assert rev.delivery.pk == sent_delivery and rev.delivery.payload_id == rev.payload_id
    assert (rev.delivery.stream, rev.delivery.sequence) == (str(sent), 1)
    assert rev.delivery.idempotency_key == f"{sent}:1"  # HER-SYS may have stored it under this key
    doc = client.get(f"/api/v1/notifications/{sent}/document", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert doc.status_code == 200 and doc.content == rev.payload.content

    gone = NotificationRevision.objects.select_related("payload").get(notification__uuid=purged).payload
    assert gone.content is None and gone.purged_at is not None and gone.missing_reason
    assert client.get(f"/api/v1/notifications/{purged}/document",
                      HTTP_AUTHORIZATION="Api-Key key-h0001").status_code == 410

    empty = NotificationRevision.objects.select_related("payload").get(notification__uuid=broken).payload
    assert empty.content is None and empty.purged_at is None
    assert empty.missing_reason.startswith("could not be built")
    missing = client.get(f"/api/v1/notifications/{broken}/document", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert missing.status_code == 404 and "保存されていません" in missing.json()["detail"]
    # Nothing rebuilt behind a person's back: the queued delivery becomes a dead letter to look at.
    assert delivery_attempt(broken_delivery).status == DeliveryNow.Status.DEAD

    # And back again: the outbox points to its revision as before.
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    row = old.get_model("delivery", "Delivery").objects.get(pk=sent_delivery)
    assert row.revision.notification.uuid == sent and row.idempotency_key == f"{sent}:1"
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
