"""Connector keys: what a hospital connector signs its API calls with (`Authorization: Api-Key <key>`).

A key is generated here, shown once, stored as its SHA-256 only. It is named (which machine holds it), records
when it was last used, is rotated with an overlap (the new key is shown once; the old one keeps working until the
end of the overlap, so the connector can be switched without a gap) and revoked at once. A key of a deactivated
hospital is refused. Central admins manage the keys of every hospital, a hospital administrator those of its own
(accounts.admin_services.may_manage_hospital); everything audited, never the key itself.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assist_portal.audit.services import audit_record
from assist_portal.sqlcache import CompiledModelQuery

from .models import ConnectorKey, Hospital, User

KEY_PREFIX = "hk_"


class ConnectorKeyError(Exception):
    """A refused key operation, with a message for the administrator (Japanese)."""


def may_manage_keys(by, hospital: Hospital) -> bool:
    if by is None or by.role == User.Role.CENTRAL_ADMIN:
        return True
    return by.role == User.Role.HOSPITAL_ADMIN and by.hospital_id == hospital.pk and by.hospital_is_active


def _require(by, hospital: Hospital) -> None:
    if not may_manage_keys(by, hospital):
        raise ConnectorKeyError("この医療機関の連携用APIキーを管理する権限がありません。")


def _new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ord(ch) < 32 for ch in name):
        raise ConnectorKeyError("キーの名前を入力してください（100文字以内。例：「本院DMZ 連携サーバー1」）。")
    return name


def _store(hospital: Hospital, name: str, secret: str, by) -> ConnectorKey:
    return ConnectorKey.objects.create(hospital=hospital, name=name, prefix=secret[:len(KEY_PREFIX) + 6],
                                       key_hash=ConnectorKey.hash_secret(secret),
                                       created_by=by if getattr(by, "pk", None) else None)


def connector_key_create(hospital: Hospital, *, name: str, by=None, request=None) -> tuple[ConnectorKey, str]:
    """A new key for `hospital`; returns (row, key). The key is never stored and cannot be shown again."""
    _require(by, hospital)
    name = _clean_name(name)
    secret = _new_secret()
    with transaction.atomic():
        row = _store(hospital, name, secret, by)
        audit_record("connector_key.create", request=request, user=by, hospital_code=hospital.code, obj=row,
                     name=name, prefix=row.prefix)
    return row, secret


def connector_key_register(hospital: Hospital, *, name: str, secret: str) -> ConnectorKey:
    """Register a key generated elsewhere (demo data, benchmarks, tests: a known key). Not for production use."""
    row = ConnectorKey.objects.filter(key_hash=ConnectorKey.hash_secret(secret)).first()
    return row or _store(hospital, _clean_name(name), secret, None)


def connector_key_rotate(key: ConnectorKey, *, overlap_hours: float | None = None, by=None,
                         request=None) -> tuple[ConnectorKey, str]:
    """A new key with the same name; the old one keeps working for `overlap_hours` (CONNECTOR_KEY_OVERLAP_HOURS
    by default, 0 = ends now), then stops. Returns (new row, new key)."""
    _require(by, key.hospital)
    hours = settings.CONNECTOR_KEY_OVERLAP_HOURS if overlap_hours is None else overlap_hours
    if not 0 <= hours <= 24 * 30:
        raise ConnectorKeyError("重複期間は0〜720時間で指定してください。")
    now = timezone.now()
    secret = _new_secret()
    with transaction.atomic():
        old = ConnectorKey.objects.select_for_update().get(pk=key.pk)
        if not old.is_usable(now) or old.replaced_by_id is not None:
            raise ConnectorKeyError("失効したキー、または更新済みのキーは更新できません。")
        new = _store(old.hospital, old.name, secret, by)
        end = now + timedelta(hours=hours)
        old.expires_at = min(old.expires_at, end) if old.expires_at else end
        old.replaced_by = new
        old.save(update_fields=["expires_at", "replaced_by"])
        audit_record("connector_key.rotate", request=request, user=by, hospital_code=old.hospital.code, obj=new,
                     replaces=old.pk, old_key_ends=old.expires_at.isoformat(), prefix=new.prefix)
    return new, secret


def connector_key_revoke(key: ConnectorKey, *, by=None, request=None) -> ConnectorKey:
    """Stop the key now (e.g. the machine holding it was lost)."""
    _require(by, key.hospital)
    with transaction.atomic():
        row = ConnectorKey.objects.select_for_update().get(pk=key.pk)
        if row.revoked_at is None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
            audit_record("connector_key.revoke", request=request, user=by, hospital_code=row.hospital.code, obj=row,
                         prefix=row.prefix)
    return row


#: last_used_at is written at most this often per key (not a write per API call).
LAST_USED_RESOLUTION = timedelta(seconds=60)


# Every connector request (issue 13): compiled once per process (ADR 0018).
_BY_HASH = CompiledModelQuery(ConnectorKey, lambda key_hash: ConnectorKey.objects.filter(
    key_hash=key_hash, hospital__is_active=True).order_by()[:1], related=("hospital",))


def connector_key_authenticate(secret: str) -> ConnectorKey | None:
    """The usable key row for `secret` (hospital active, not revoked, not past its end), else None."""
    if not secret or len(secret) > 200:
        return None
    now = timezone.now()
    row = _BY_HASH.first(ConnectorKey.hash_secret(secret))
    if row is None or not row.is_usable(now):
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ConnectorKey.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def keys_for_hospital(hospital: Hospital):
    return ConnectorKey.objects.filter(hospital=hospital).select_related("created_by", "replaced_by")
