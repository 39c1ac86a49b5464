from __future__ import annotations

from django.db.models import F, Q
from django.utils import timezone

from .models import FormAssignment, FormDefinition


def definition_for_hospital(hospital, at=None) -> FormDefinition | None:
    """The published definition a hospital uses at `at`: its newest assignment in effect, hospital-specific
    assignments winning over all-hospital ones of the same date."""
    at = at or timezone.now()
    chosen = (
        FormAssignment.objects.filter(effective_from__lte=at, definition__status=FormDefinition.Status.PUBLISHED)
        .filter(Q(hospital=hospital) | Q(hospital__isnull=True))
        .order_by("-effective_from", F("hospital_id").asc(nulls_last=True), "-id")
        .select_related("definition")
        .first()
    )
    return chosen.definition if chosen else None


def item_set_version(definition: FormDefinition) -> str:
    """The HER-SYS item-set version the definition speaks (what the WebAPI checks), e.g. 2022-09."""
    return str(definition.definition.get("version") or definition.version)
