"""Central form-definition management: draft → validate → diff → publish (now or scheduled) → assign.

Every definition is a version of one form (``FormDefinition.form``); publishing assigns it for that form only.
Moving drafts in flight to a new definition is the notifications app's job, orchestrated by the caller
(``central.services.definition_publish``): this app imports no app above it.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from assist_portal.audit.services import audit_record
from formengine import DefinitionError, content_hash, validate_definition

from .catalogs import catalog_definition
from .models import LEGACY_FORM, FormAssignment, FormDefinition
from .selectors import hospital_forms

FORM_KEY_MAX = 40


def _form_key(value) -> str:
    key = str(value or "").strip()
    if not key or len(key) > FORM_KEY_MAX or not all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        raise DefinitionError("様式キーは半角英数字・ハイフン・下線で40文字以内にしてください（例：ehec）。")
    return key


def definition_create(definition: dict, *, user=None, form: str | None = None, version: str | None = None,
                      title: str = "", based_on: FormDefinition | None = None, request=None) -> FormDefinition:
    """A new draft. Its form is the one the definition states, else `form`, else its base's."""
    problems = validate_definition(definition)
    if problems:
        raise DefinitionError("; ".join(problems))
    stated = definition.get("form") if isinstance(definition, dict) else None
    form_key = _form_key(stated or form or (based_on.form if based_on else None) or LEGACY_FORM)
    row = FormDefinition.objects.create(
        form=form_key, version=version or str(definition.get("version", "")),
        title=title or definition.get("title", ""), definition=definition, content_hash=content_hash(definition),
        based_on=based_on, created_by=user,
    )
    audit_record("formdef.create", request=request, user=user, obj=row, content_hash=row.content_hash,
                 form=row.form)
    return row


def definition_import_builtin(catalog_id: str, *, user=None, request=None) -> FormDefinition:
    """A draft from a catalog shipped in ``vocabulary/catalogs`` (id ``<form>-<version>``)."""
    entry, definition = catalog_definition(catalog_id)
    return definition_create(definition, user=user, form=entry.form, version=entry.version, request=request)


def definition_update_draft(draft: FormDefinition, definition: dict, *, user, request=None) -> FormDefinition:
    if draft.is_published:
        raise DefinitionError("公開済みの様式定義は変更できません。新しい下書きを作成してください。")
    problems = validate_definition(definition)
    if problems:
        raise DefinitionError("; ".join(problems))
    stated = definition.get("form")
    if stated and stated != draft.form:
        raise DefinitionError(f"下書きの様式（{draft.form}）は変えられません。別の様式は新しい下書きにしてください。")
    draft.definition = definition
    draft.content_hash = content_hash(definition)
    draft.save()
    audit_record("formdef.edit", request=request, user=user, obj=draft, content_hash=draft.content_hash)
    return draft


def definition_rename(draft: FormDefinition, *, version: str, user=None, request=None) -> FormDefinition:
    """A draft's version label (published definitions keep theirs)."""
    label = (version or "").strip()[:40]
    if draft.is_published:
        raise DefinitionError("公開済みの様式定義の版は変更できません。")
    if not label:
        raise DefinitionError("版の名前を入力してください。")
    old = draft.version
    draft.version = label
    draft.save(update_fields=["version"])
    audit_record("formdef.rename", request=request, user=user, obj=draft, from_version=old, to_version=label)
    return draft


def definition_publish(draft: FormDefinition, *, user=None, hospitals=None, effective_from=None,
                       request=None) -> FormDefinition:
    """Publish a draft (immutable from now on) and assign it, for its form only, to every hospital or to
    `hospitals`; other forms' assignments are untouched and published versions are unique within a form. Moving
    the drafts in flight is the caller's part (`central.services.definition_publish` orchestrates both)."""
    problems = validate_definition(draft.definition)
    if problems:
        raise DefinitionError("; ".join(problems))
    effective_from = effective_from or timezone.now()
    with transaction.atomic():
        row = FormDefinition.objects.select_for_update().get(pk=draft.pk)
        if row.is_published:
            raise DefinitionError("この様式定義はすでに公開されています。")
        if FormDefinition.objects.filter(status=FormDefinition.Status.PUBLISHED, form=row.form,
                                         version=row.version).exists():
            raise DefinitionError(f"様式「{row.form}」の版「{row.version}」はすでに公開されています。版の名前を変えてください。")
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
                     form=row.form, hospitals=[h.code for h in hospitals] if hospitals else "all",
                     effective_from=effective_from.isoformat())
    return row


def hospital_default_form_set(hospital, form: str, *, user, request=None):
    """Choose the form a hospital's notifications open with (blank: its earliest assigned form)."""
    form = (form or "").strip()
    if form and form not in hospital_forms(hospital):
        raise DefinitionError(f"様式「{form[:40]}」はこの医療機関に割り当てられていません。先に公開・割当をしてください。")
    old = hospital.default_form
    hospital.default_form = form
    hospital.save(update_fields=["default_form"])
    audit_record("hospital.default_form", request=request, user=user, obj=hospital, hospital_code=hospital.code,
                 old=old, new=form)
    return hospital
