import pytest
from django.db import DatabaseError, connection, transaction

from assist_portal.audit.models import AppendOnlyError, AuditEvent
from assist_portal.audit.services import audit_record

pytestmark = [pytest.mark.django_db, pytest.mark.security]


def test_audit_log_is_append_only_in_python_and_in_the_database():
    event = audit_record("audit.export", hospital_code="H0001", object_type="x", object_id="1")
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    # Raw SQL is refused by the database trigger.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "audit.export"


@pytest.mark.django_db
def test_an_unlisted_audit_action_is_refused_before_anything_is_written():
    from assist_portal.audit.events import UnknownAuditAction
    from assist_portal.audit.models import AuditEvent
    from assist_portal.audit.services import audit_record

    before = AuditEvent.objects.count()
    with pytest.raises(UnknownAuditAction):
        audit_record("notification.sav")  # a typo is a bug, not a new kind of event
    assert AuditEvent.objects.count() == before
    assert audit_record("notification.save").action == "notification.save"
