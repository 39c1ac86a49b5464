"""Account administration by central admins: create individual accounts with a TOTP device, unlock."""
from __future__ import annotations

import secrets

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.audit.services import audit_record

from .models import User


class AccountError(Exception):
    pass


def user_create(*, username: str, role: str, hospital=None, display_name: str = "", password: str | None = None,
                by=None, request=None) -> tuple[User, str, TOTPDevice]:
    """An individual account (no shared accounts) with a fresh TOTP device; returns the initial password."""
    username = username.strip()
    if not username or len(username) > 150:
        raise AccountError("ユーザー名を入力してください（150文字以内）。")
    if User.objects.filter(username=username).exists():
        raise AccountError("このユーザー名はすでに使われています。")
    if role not in User.Role.values:
        raise AccountError("役割が正しくありません。")
    if role != User.Role.CENTRAL_ADMIN and hospital is None:
        raise AccountError("医師・事務には所属医療機関が必要です。")
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, role=role, display_name=display_name,
                                        hospital=None if role == User.Role.CENTRAL_ADMIN else hospital)
        device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
        audit_record("user.create", request=request, user=by, obj=user, role=role,
                     hospital_code=hospital.code if hospital else "")
    return user, password, device


def user_unlock(user: User, *, by=None, request=None) -> None:
    User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
    audit_record("user.unlock", request=request, user=by, obj=user)


def totp_qr_svg(device: TOTPDevice) -> str:
    """The enrolment QR code (otpauth URL) as an SVG data URI, for an authenticator app."""
    import segno

    return segno.make(device.config_url, error="m").svg_data_uri(scale=4)
