"""Frozen payloads (step 2 of 3): freeze the document of every existing revision, best effort.

Each revision gets a Payload built by the same builder the confirmation uses (notifications.documents), dated the
day it was confirmed, with today's facility master (the one the next attempt would have used anyway). A revision
whose document cannot be built keeps an empty payload marked with the reason (its delivery, if not final yet,
becomes a dead letter a person looks at instead of sending something rebuilt); a purged revision keeps an empty
payload marked purged. Existing deliveries keep their idempotency key (`<uuid>:<n>`): a request HER-SYS may already
have stored must be repeatable under the same key; only new deliveries use `<stream>:<sequence>:<sha256[:16]>`.
"""
import hashlib

from django.db import migrations
from django.utils import timezone

CONTENT_TYPE = "application/fhir+json"


def _builder():
    """The live builder, or the reason it cannot be used (this migration must not fail because of it)."""
    try:
        from assist_portal.notifications.documents import document_bundle_build
        from hersys_client.client import serialize_bundle
    except Exception as exc:  # noqa: BLE001 - best effort by design
        return None, f"builder unavailable: {type(exc).__name__}"

    def build(**kwargs) -> bytes:
        return serialize_bundle(document_bundle_build(**kwargs))

    return build, ""


def freeze(apps, schema_editor):
    Revision = apps.get_model("notifications", "NotificationRevision")
    Delivery = apps.get_model("delivery", "Delivery")
    Payload = apps.get_model("delivery", "Payload")
    build, unavailable = _builder()
    revisions = (Revision.objects.filter(payload__isnull=True)
                 .select_related("notification__hospital", "definition").order_by("pk"))
    for rev in revisions.iterator(chunk_size=200):
        notification, hospital = rev.notification, rev.notification.hospital
        content, reason, purged_at = None, "", notification.purged_at
        if purged_at is not None:
            reason = "purged before the document was frozen"
        elif build is None:
            reason = unavailable
        else:
            try:
                content = build(
                    notification_id=str(notification.uuid), number=rev.number, kind=rev.kind,
                    definition=rev.definition.definition,
                    item_set=str(rev.definition.definition.get("version") or rev.definition.version),
                    values=rev.values or {},
                    facility={"code": hospital.code, "name": hospital.name, "address": hospital.address,
                              "phone": hospital.phone},
                    today=timezone.localdate(rev.confirmed_at),
                )
            except Exception as exc:  # noqa: BLE001 - best effort: leave it empty and say why
                reason = f"could not be built: {type(exc).__name__}: {exc}"[:300]
        payload = Payload.objects.create(
            content=content, sha256=hashlib.sha256(content).hexdigest() if content else "",
            content_type=CONTENT_TYPE, created_at=rev.confirmed_at, purged_at=purged_at, missing_reason=reason)
        rev.payload = payload
        delivery = Delivery.objects.filter(revision_id=rev.pk).first()
        if delivery is not None:
            delivery.payload = payload
            delivery.stream = str(notification.uuid)
            delivery.sequence = rev.number
            delivery.save(update_fields=["payload", "stream", "sequence"])
            rev.delivery = delivery
        rev.save(update_fields=["payload", "delivery"])


def unfreeze(apps, schema_editor):
    """The way back: the outbox points to its revision again (payloads go with the reversed schema)."""
    Revision = apps.get_model("notifications", "NotificationRevision")
    Delivery = apps.get_model("delivery", "Delivery")
    for rev in Revision.objects.filter(delivery__isnull=False).only("pk", "delivery_id").iterator():
        Delivery.objects.filter(pk=rev.delivery_id).update(revision_id=rev.pk)
    Revision.objects.update(payload=None, delivery=None)


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0004_payload'),
        ('notifications', '0004_revision_payload'),
        ('formdefs', '0002_drop_applied_at'),
        ('accounts', '0002_hospital_csv_profile'),
    ]

    operations = [
        migrations.RunPython(freeze, unfreeze),
    ]
