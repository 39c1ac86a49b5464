"""Q&A 5 (issue 9): when the rest is not yet known, the physician may file the minimum items first — the catalog's
priority items (diagnosis class, name, sex, birth date, residence, test method / specimen / collection date /
result) and whatever the destination's item set requires — as the first revision, clearly marked; the case stays
続報待ち until the rest is confirmed as an update. Kept apart from `services.notification_confirm` (one entry point
each) so the confirmation review step can call either."""
from __future__ import annotations

from django.db import transaction

import vocabulary
from assist_portal.audit.services import audit_record
from assist_portal.formdefs.selectors import item_set_version
from formengine.conditions import is_empty
from formengine.definition import items_by_id, row_key

from .models import Notification, NotificationRevision


def minimum_missing(definition, evaluation) -> list[str]:
    """Labels of the minimum items still missing: the priority items the evaluation found empty, and the items
    the destination's item set requires for this form and version (what the sandbox checks)."""
    items = items_by_id(definition.definition)
    missing = list(evaluation.missing_priority)
    try:
        required = vocabulary.item_set(definition.form, item_set_version(definition))
    except KeyError:
        required = ()
    values = evaluation.values
    for iid in required:
        item = items.get(iid)
        if item is None or iid in missing or iid in evaluation.hidden:
            continue
        if item.get("group"):
            rows = values.get(item["group"]) if isinstance(values.get(item["group"]), list) else []
            empty = not rows or any(is_empty(r.get(row_key(item))) for r in rows if isinstance(r, dict))
        else:
            empty = is_empty(values.get(iid))
        if empty:
            missing.append(iid)
    return [items.get(i, {}).get("label", i) for i in missing]


def notification_confirm_minimum(notification: Notification, user, values: dict, lock_version: int, request=None):
    """The physician's confirmation of the first report with the minimum items: a revision marked `minimum`, its
    outbox row, and the notification marked 続報待ち — in one transaction. Returns (row, evaluation, delivery,
    missing labels); delivery None when refused (what was typed is kept as a draft)."""
    from .services import (
        WorkflowError,
        _apply_class_report_date,
        _apply_values,
        _locked_for_confirmation,
        _revision_write,
    )

    with transaction.atomic():
        row = _locked_for_confirmation(notification, user, lock_version)
        if row.revision > 0:
            raise WorkflowError("最小限の項目での確定は第1報だけです。残りの項目は「修正を確定する」から確認して送ってください。")
        evaluation = _apply_values(row, values, user, "draft")  # completeness is the minimum set's, below
        missing = minimum_missing(row.definition, evaluation)
        if evaluation.errors or missing or not evaluation.notifiable:
            row.save()
            audit_record("notification.save", request=request, user=user, obj=row, lock_version=row.lock_version,
                         confirm_refused=True, scope="minimum", errors=len(evaluation.errors), missing=len(missing))
            return row, evaluation, None, missing
        _apply_class_report_date(row, evaluation.values)
        row.revision += 1
        row.status = Notification.Status.CONFIRMED
        row.has_unsent_changes = False
        row.follow_up_pending = True
        row.save()
        revision, delivery = _revision_write(row, kind=NotificationRevision.Kind.NEW, definition=row.definition,
                                             values=evaluation.values, user=user,
                                             scope=NotificationRevision.Scope.MINIMUM)
        audit_record("notification.confirm", request=request, user=user, obj=row, revision=revision.number,
                     kind=revision.kind, scope="minimum", definition_hash=row.definition.content_hash,
                     payload_sha256=revision.payload.sha256)
    return row, evaluation, delivery, []
