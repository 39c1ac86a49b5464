"""The document sent to HER-SYS for one revision: built once, inside the confirm/withdraw transaction, and frozen.

The bytes are the canonical serialisation of the FHIR document Bundle (UTF-8 JSON, sorted keys, no whitespace).
They are stored encrypted as the revision's `delivery.Payload` with their sha256; every attempt sends exactly
them and the connector's document endpoint serves exactly them. Nothing here is ever rebuilt for a revision that
already has a payload (the facility master, settings and code may all have changed since).
"""
from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings

from assist_portal.delivery.models import Payload
from assist_portal.delivery.services import payload_create
from assist_portal.formdefs.selectors import item_set_version
from formengine import to_questionnaire_response
from hersys_client import build_document_bundle, questionnaire_canonical
from hersys_client.client import serialize_bundle

DOCUMENT_CONTENT_TYPE = "application/fhir+json"


class DocumentBuildError(Exception):
    """The document for a revision could not be built (our data or code is wrong, not the user's input)."""


def document_bundle_build(*, notification_id: str, number: int, kind: str, definition: dict[str, Any],
                          item_set: str, values: dict[str, Any], facility: dict[str, Any],
                          today: date | None = None, form: str | None = None,
                          definition_hash: str | None = None) -> dict[str, Any]:
    """The FHIR document Bundle of one revision from plain values (also used by the freezing migration, which
    has only historical models): only HER-SYS items leave the data centre."""
    form = form or definition.get("form")
    # The canonical names the form, so the destination knows which item set applies; definitions stored before
    # forms had keys point at the legacy URL, which names the same form.
    canonical = (questionnaire_canonical(form, item_set) if form
                 else f"{settings.QUESTIONNAIRE_CANONICAL}|{item_set}")
    qr = to_questionnaire_response(definition, values, questionnaire_canonical=canonical, status=kind,
                                   definition_hash=definition_hash)
    return build_document_bundle(
        notification_id=notification_id, revision=number, status=kind, questionnaire_response=qr, items=values,
        facility=facility, today=today,
    )


def revision_document_build(*, notification, number: int, kind: str, definition, values: dict[str, Any]) -> bytes:
    """Canonical bytes of the document for a revision about to be written (the facility master as it is now)."""
    bundle = document_bundle_build(
        notification_id=str(notification.uuid), number=number, kind=kind, definition=definition.definition,
        item_set=item_set_version(definition), values=values, facility=notification.hospital.facility_master(),
        form=definition.form,
        # A published definition is immutable and its stored hash is its content's: no need to hash it again.
        definition_hash=definition.content_hash if definition.status == definition.Status.PUBLISHED else None,
    )
    return serialize_bundle(bundle)


def revision_payload_freeze(*, notification, number: int, kind: str, definition, values: dict[str, Any]) -> Payload:
    """Build the document once and store it as a payload; call inside the transaction writing the revision."""
    try:
        content = revision_document_build(notification=notification, number=number, kind=kind,
                                          definition=definition, values=values)
    except (ValueError, TypeError, KeyError) as exc:
        raise DocumentBuildError(f"{type(exc).__name__}: {exc}") from exc
    return payload_create(content=content, content_type=DOCUMENT_CONTENT_TYPE)
