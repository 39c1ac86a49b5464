import pytest
from django.db import DatabaseError, connection, transaction

from assist_portal.audit.models import AppendOnlyError, AuditEvent
from assist_portal.audit.services import audit_record

pytestmark = [pytest.mark.django_db, pytest.mark.security]


def test_audit_log_is_append_only_in_python_and_in_the_database():
    event = audit_record("test.event", hospital_code="H0001", object_type="x", object_id="1")
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
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"
