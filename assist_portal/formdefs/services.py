"""Central form-definition management: draft → validate → diff → publish (now or scheduled) → assign."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from assist_portal.audit.services import audit_record
from formengine import (
    DefinitionError,
    builtin_definition,
    content_hash,
    validate_definition,
)

from .models import FormAssignment, FormDefinition


def definition_create(definition: dict, *, user=None, version: str | None = None, title: str = "",
                      based_on: FormDefinition | None = None, request=None) -> FormDefinition:
    problems = validate_definition(definition)
    if problems:
        raise DefinitionError("; ".join(problems))
    row = FormDefinition.objects.create(
        version=version or str(definition.get("version", "")), title=title or definition.get("title", ""),
        definition=definition, content_hash=content_hash(definition), based_on=based_on, created_by=user,
    )
    audit_record("formdef.create", request=request, user=user, obj=row, content_hash=row.content_hash)
    return row


def definition_import_builtin(catalog_id: str, *, user=None, request=None) -> FormDefinition:
    """A draft from a catalog shipped in ``vocabulary`` (``<form>-<version>``; its version names the draft)."""
    definition = builtin_definition(catalog_id)
    return definition_create(definition, user=user, version=definition["version"], request=request)


def definition_update_draft(draft: FormDefinition, definition: dict, *, user, request=None) -> FormDefinition:
    if draft.is_published:
        raise DefinitionError("公開済みの様式定義は変更できません。新しい下書きを作成してください。")
    problems = validate_definition(definition)
    if problems:
        raise DefinitionError("; ".join(problems))
    draft.definition = definition
    draft.content_hash = content_hash(definition)
    draft.save()
    audit_record("formdef.edit", request=request, user=user, obj=draft, content_hash=draft.content_hash)
    return draft


def definition_publish(draft: FormDefinition, *, user=None, hospitals=None, effective_from=None,
                       request=None) -> FormDefinition:
    """Publish a draft (immutable from now on) and assign it to every hospital or to `hospitals`.
    Drafts in flight move to it when it takes effect (at once, or lazily after a scheduled date)."""
    from assist_portal.notifications.services import drafts_migrate

    problems = validate_definition(draft.definition)
    if problems:
        raise DefinitionError("; ".join(problems))
    effective_from = effective_from or timezone.now()
    with transaction.atomic():
        row = FormDefinition.objects.select_for_update().get(pk=draft.pk)
        if row.is_published:
            raise DefinitionError("この様式定義はすでに公開されています。")
        if FormDefinition.objects.filter(status=FormDefinition.Status.PUBLISHED, version=row.version).exists():
            raise DefinitionError(f"版「{row.version}」はすでに公開されています。版の名前を変えてください。")
        row.status = FormDefinition.Status.PUBLISHED
        row.published_by = user
        row.published_at = timezone.now()
        row.content_hash = content_hash(row.definition)
        row.save()
        targets = list(hospitals) if hospitals else [None]
        for hospital in targets:
            FormAssignment.objects.create(definition=row, hospital=hospital, effective_from=effective_from,
                                          created_by=user)
        audit_record("formdef.publish", request=request, user=user, obj=row, content_hash=row.content_hash,
                     hospitals=[h.code for h in hospitals] if hospitals else "all",
                     effective_from=effective_from.isoformat())
    if effective_from <= timezone.now():
        for hospital in hospitals or [None]:  # only the drafts of the hospitals the publish concerns
            drafts_migrate(hospital)
    return row
