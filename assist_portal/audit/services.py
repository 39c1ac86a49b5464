from __future__ import annotations

from typing import Any

from .events import AuditAction, audit_action
from .models import AuditEvent


def client_ip(request) -> str | None:
    if request is None:
        return None
    from django.conf import settings

    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if settings.TRUST_X_FORWARDED_FOR else ""
    # The entry our reverse proxy added is the last one; anything before it came from the client and can be
    # made up (it must not pick the address the sign-in lockout counts, accounts.throttle).
    candidate = forwarded.split(",")[-1].strip() if forwarded else request.META.get("REMOTE_ADDR")
    import ipaddress

    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def audit_record(action: AuditAction | str, *, request=None, user=None, hospital_code: str = "", obj=None,
                 object_type: str = "", object_id: str = "", **detail: Any) -> AuditEvent:
    """Append one audit event. `action` is one of AuditAction (anything else raises before a row is written);
    `detail` must never carry patient data (ids and codes only)."""
    event = audit_event(action, request=request, user=user, hospital_code=hospital_code, obj=obj,
                        object_type=object_type, object_id=object_id, **detail)
    event.save()
    return event


def audit_write(events: list[AuditEvent]) -> list[AuditEvent]:
    """Append several events built with `audit_event` in one statement (e.g. a launch and the view it shows)."""
    return AuditEvent.objects.bulk_create(events)


def audit_event(action: AuditAction | str, *, request=None, user=None, hospital_code: str = "", obj=None,
                object_type: str = "", object_id: str = "", **detail: Any) -> AuditEvent:
    """One audit event as `audit_record` appends it, built but not yet written (see `audit_write`)."""
    action = audit_action(action)
    if user is None and request is not None and getattr(request, "user", None) is not None:
        user = request.user if request.user.is_authenticated else None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "uuid", None) or obj.pk)
    if not hospital_code and user is not None and getattr(user, "hospital", None) is not None:
        hospital_code = user.hospital.code
    return AuditEvent(
        action=action.value,
        actor_id=getattr(user, "pk", None),
        actor_username=getattr(user, "username", "") or "",
        actor_role=getattr(user, "role", "") or "",
        hospital_code=hospital_code,
        object_type=object_type,
        object_id=object_id,
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
        detail=detail,
    )
