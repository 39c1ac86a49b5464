"""Administration by central admins: create individual accounts, reset a lost authenticator, unlock; a
hospital's mapping tables.

The administrator only ever learns a one-time initial password. The second factor is enrolled by the account
holder at first sign-in (accounts.services.enrol_*), and the one-time password must be changed right after it,
so the administrator never holds both factors of someone else's account.
"""
from __future__ import annotations

import secrets

from django.db import transaction
from django.db.models import Exists, OuterRef
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

import mapping
from assist_portal.audit.services import audit_record

from .models import Hospital, User


class AccountError(Exception):
    pass


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def user_create(*, username: str, role: str, hospital=None, display_name: str = "", password: str | None = None,
                by=None, request=None) -> tuple[User, str]:
    """An individual account (no shared accounts) without any second factor; returns the one-time password.

    The holder registers the authenticator app at first sign-in and must then replace the password.
    """
    username = username.strip()
    if not username or len(username) > 150:
        raise AccountError("ユーザー名を入力してください（150文字以内）。")
    if User.objects.filter(username=username).exists():
        raise AccountError("このユーザー名はすでに使われています。")
    if role not in User.Role.values:
        raise AccountError("役割が正しくありません。")
    if role != User.Role.CENTRAL_ADMIN and hospital is None:
        raise AccountError("医師・事務には所属医療機関が必要です。")
    password = password or one_time_password()
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, role=role, display_name=display_name,
                                        hospital=None if role == User.Role.CENTRAL_ADMIN else hospital,
                                        must_change_password=True)
        audit_record("user.create", request=request, user=by, obj=user, role=role,
                     hospital_code=hospital.code if hospital else "")
    return user, password


def user_reset(user: User, *, by=None, request=None) -> str:
    """Lost phone: remove every OTP device, set a new one-time password (returned, shown once), force a change.

    The holder re-enrols at the next sign-in. The new password also ends the account's open sessions (Django
    checks the password hash stored in each session).
    """
    if by is not None and by.pk == user.pk:
        raise AccountError("自分自身のアカウントはリセットできません。別の中央管理者に依頼してください。")
    password = one_time_password()
    with transaction.atomic():
        removed = 0
        for device in list(devices_for_user(user, confirmed=None)):
            device.delete()
            removed += 1
        user.set_password(password)
        user.must_change_password = True
        user.failed_logins = 0
        user.locked_until = None
        user.save(update_fields=["password", "must_change_password", "failed_logins", "locked_until"])
        audit_record("user.reset", request=request, user=by, obj=user, devices_removed=removed)
    return password


def user_unlock(user: User, *, by=None, request=None) -> None:
    User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
    audit_record("user.unlock", request=request, user=by, obj=user)


def users_for_admin():
    """Every account with whether its authenticator is registered (`has_device`), for the users page."""
    confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    return (User.objects.select_related("hospital").annotate(has_device=Exists(confirmed))
            .order_by("hospital__code", "username"))


def hospital_mapping_update(hospital: Hospital, *, local_codes, csv_profile, user, request=None) -> Hospital:
    """A central admin's edit of a hospital's mapping tables (local lab/specimen codes, DWH column profile);
    used from the next extract the hospital pushes. ValueError (Japanese) when a table is not usable."""
    if not isinstance(local_codes, dict) or not all(isinstance(local_codes.get(k, {}), dict)
                                                    for k in ("lab", "specimen")):
        raise ValueError("院内コード表は {\"lab\": {...}, \"specimen\": {...}} の形にしてください。")
    if not isinstance(csv_profile, dict):
        raise ValueError("CSVプロファイルはJSONオブジェクトで入力してください。")
    mapping.load_local_codes(local_codes)
    if csv_profile:
        _, problem = mapping.load_profile(csv_profile)
        if problem:
            raise ValueError(problem)
    hospital.local_codes = local_codes
    hospital.csv_profile = csv_profile
    hospital.save(update_fields=["local_codes", "csv_profile"])
    audit_record("hospital.mapping_edit", request=request, user=user, hospital_code=hospital.code, obj=hospital)
    return hospital
