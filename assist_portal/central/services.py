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
