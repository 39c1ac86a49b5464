"""Nothing typed is lost (issue 9): what a person types is kept as they type (the page posts it, debounced), apart
from the notification — only the fields that differ from it, never a suggestion — and comes back on their next
visit (after a closed tab, a crash or an expired session) until they save. Writes only; the read is
`selectors.autosave_for`."""
from __future__ import annotations

from django.utils import timezone

from assist_portal.audit.services import audit_record
from formengine.definition import items_by_id
from jpinput.postal import normalise_postal

from .models import AutosavedInput, Notification

#: Provenance kinds that are not typed on the page (never kept as someone's input).
_NOT_TYPED = ("computed", "master")


def _posted(key: str, posted_names: set[str]) -> bool:
    return key in posted_names or any(n.startswith(f"{key}-") for n in posted_names)


def autosave_store(notification: Notification, user, values: dict, *, posted_names: set[str]) -> AutosavedInput | None:
    """Keep the fields of `values` (parsed from the page) that differ from the notification; a field the page
    posted empty counts as cleared, one it did not post is left alone. Nothing to keep: the row goes."""
    if notification.status == Notification.Status.WITHDRAWN:
        return None
    held = notification.values or {}
    items = items_by_id(notification.definition.definition)

    def same(key, a, b) -> bool:  # as the page shows it (a postal code with or without the hyphen is the same)
        if (items.get(key) or {}).get("type") == "postal_code":
            return (normalise_postal(a) or a) == (normalise_postal(b) or b)
        return a == b

    diff = {}
    for key in set(held) | set(values):
        if not _posted(key, posted_names):
            continue
        if str((notification.provenance or {}).get(key, "")).split(":", 1)[0] in _NOT_TYPED:
            continue
        if not same(key, values.get(key), held.get(key)):
            diff[key] = values.get(key)
    if not diff:
        AutosavedInput.objects.filter(notification=notification, user=user).delete()
        return None
    row, created = AutosavedInput.objects.update_or_create(
        notification=notification, user=user,
        defaults={"values": diff, "based_on_version": notification.lock_version, "saved_at": timezone.now()})
    if created:  # once per stretch of unsaved typing (not every keystroke)
        audit_record("notification.autosave", user=user, obj=notification, items=len(diff))
    return row


def autosave_discard(notification: Notification, user) -> None:
    """After a save, a confirmation or a decision on EMR changes: what was kept is now in the notification."""
    AutosavedInput.objects.filter(notification=notification, user=user).delete()


def with_autosave(values: dict, autosaved: AutosavedInput | None) -> dict:
    """The notification's values with the person's unsaved input over them (None = cleared)."""
    if autosaved is None:
        return values
    out = dict(values)
    for key, value in (autosaved.values or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
