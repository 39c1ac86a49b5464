"""Orchestrations of the central administration: actions that span the apps below it in the graph.

The apps below never call back up: formdefs publishes a definition without knowing notifications; moving the
drafts in flight to it is the second half of the same action, done here."""
from __future__ import annotations

from django.utils import timezone

from assist_portal.formdefs import services as formdefs_services
from assist_portal.notifications.services import drafts_migrate


def definition_publish(draft, *, user=None, hospitals=None, effective_from=None, request=None):
    """Publish a definition for its form and, when it takes effect at once, move the drafts in flight of that
    form (at the hospitals the publish concerns) to it. A scheduled publish moves them lazily when opened."""
    row = formdefs_services.definition_publish(draft, user=user, hospitals=hospitals, effective_from=effective_from,
                                               request=request)
    if effective_from is None or effective_from <= timezone.now():
        for hospital in hospitals or [None]:
            drafts_migrate(hospital, form=row.form)
    return row


def hospital_assign(hospital, definition, *, user=None, request=None):
    """Onboarding: the hospital uses this published definition from now on (instead of the all-hospital one);
    its drafts in flight move to it."""
    from django.db import transaction

    from assist_portal.audit.services import audit_record
    from assist_portal.formdefs.models import FormAssignment

    with transaction.atomic():
        row = FormAssignment.objects.create(definition=definition, hospital=hospital, effective_from=timezone.now(),
                                            created_by=user)
        audit_record("hospital.assign", request=request, user=user, hospital_code=hospital.code, obj=row,
                     definition=definition.pk, version=definition.version)
    drafts_migrate(hospital)
    return row
