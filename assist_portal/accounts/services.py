"""Sign-in: individual account, password + TOTP (django-otp), lockout after repeated failures.

First sign-in of an account without a confirmed TOTP device: the password alone does not log in; it opens a short
enrolment step (the password-verified user id is kept in the session) where the user scans a fresh TOTP secret
and proves it with a current code. Accounts whose password an administrator chose must change it first.
"""
from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, update_session_auth_hash
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.audit.services import audit_record

from .models import User
from .notices import account_notice

GENERIC_FAILURE = "ユーザー名、パスワード、またはワンタイムパスワードが正しくありません。"
ENROL_FAILURE = "ワンタイムパスワードが正しくありません。認証アプリに表示されている現在の6桁を入力してください。"
ENROL_EXPIRED = "認証アプリの登録手続きの有効期限が切れました。もう一度ユーザー名とパスワードでログインしてください。"
ENROL_SESSION_KEY = "accounts_enrol"
ENROL_MAX_AGE_SECONDS = 10 * 60


class LoginRefused(Exception):
    pass


class EnrolmentExpired(Exception):
    """No (or no longer a valid) password-verified enrolment in this session."""


def _locked_message() -> str:
    minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
    return (f"ログインに続けて失敗したため、このアカウントは一時的にロックされています。"
            f"約{minutes}分後にもう一度お試しいただくか、管理者に連絡してください。")


def _register_failure(username: str, request, reason: str) -> None:
    user = User.objects.filter(username=username).first()
    if user is not None:
        with transaction.atomic():
            User.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
            user.refresh_from_db(fields=["failed_logins"])
            if user.failed_logins >= settings.LOGIN_MAX_FAILURES:
                user.locked_until = timezone.now() + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
                user.save(update_fields=["locked_until"])
                audit_record("login.locked", request=request, user=user, failures=user.failed_logins)
    audit_record("login.failure", request=request, user=user, reason=reason,
                 object_type="username", object_id=username[:64])


def _digits(token: str) -> str:
    return "".join(ch for ch in (token or "") if ch.isdigit())


def has_confirmed_device(user: User) -> bool:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def login_verify(request, username: str, password: str, otp_token: str) -> tuple[User, TOTPDevice | None]:
    """Check the factors; raise LoginRefused with a message that does not tell which one failed.

    Returns (user, device) when password and code are right. Returns (user, None) when the password is right and
    the account has no confirmed TOTP device yet: the caller must start the enrolment step (`enrol_start`), the
    user is NOT logged in. An account with a confirmed device always needs its code.
    """
    username = (username or "").strip()
    candidate = User.objects.filter(username=username).first()
    if candidate is not None and candidate.is_locked():
        audit_record("login.refused_locked", request=request, user=candidate)
        raise LoginRefused(_locked_message())
    user = authenticate(request, username=username, password=password)
    if user is None:
        _register_failure(username, request, "password")
        raise LoginRefused(GENERIC_FAILURE)
    devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True))
    if not devices:
        return user, None
    token = _digits(otp_token)
    device = next((d for d in devices if d.verify_token(token)), None)
    if device is None:
        _register_failure(username, request, "otp")
        raise LoginRefused(GENERIC_FAILURE)
    User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
    return user, device


def login_complete(request, user, device) -> None:
    from django.contrib.auth import login

    login(request, user)
    otp_login(request, device)
    audit_record("login.success", request=request, user=user)


# --- First sign-in: TOTP enrolment ---------------------------------------------------------------------------

def enrol_start(request, user: User, next_url: str = "") -> TOTPDevice:
    """Password verified, no confirmed device: remember the user (not logged in) and give them a fresh secret.

    Every start replaces the user's unconfirmed devices, so an older QR code (or one seen by someone else) is
    useless. Refused for an account that already has a confirmed device.
    """
    if has_confirmed_device(user):
        raise EnrolmentExpired(ENROL_EXPIRED)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="default", confirmed=False)
    request.session.cycle_key()
    request.session[ENROL_SESSION_KEY] = {"user_id": user.pk, "device_id": device.pk, "next": next_url,
                                          "expires": time.time() + ENROL_MAX_AGE_SECONDS}
    return device


def enrol_cancel(request) -> None:
    request.session.pop(ENROL_SESSION_KEY, None)


def enrol_pending(request) -> tuple[User, TOTPDevice, str]:
    """The enrolment of this session: (user, unconfirmed device, next URL); EnrolmentExpired when there is none,
    it expired, or the account meanwhile got a confirmed device."""
    state = request.session.get(ENROL_SESSION_KEY)
    if not isinstance(state, dict) or float(state.get("expires", 0)) < time.time():
        enrol_cancel(request)
        raise EnrolmentExpired(ENROL_EXPIRED)
    user = User.objects.filter(pk=state.get("user_id"), is_active=True).first()
    device = TOTPDevice.objects.filter(pk=state.get("device_id"), user=user, confirmed=False).first()
    if user is None or device is None or has_confirmed_device(user):
        enrol_cancel(request)
        raise EnrolmentExpired(ENROL_EXPIRED)
    return user, device, state.get("next") or ""


def enrol_confirm(request, otp_token: str) -> tuple[User, str]:
    """Check the code of the pending device; on success confirm it and log the user in (password + TOTP).

    Wrong codes count towards the same lockout as the sign-in; a locked account cannot finish enrolment.
    """
    user, device, next_url = enrol_pending(request)
    if user.is_locked():
        audit_record("login.refused_locked", request=request, user=user)
        enrol_cancel(request)
        raise LoginRefused(_locked_message())
    if not device.verify_token(_digits(otp_token)):
        _register_failure(user.username, request, "enrol_otp")
        user.refresh_from_db(fields=["locked_until"])
        if user.is_locked():
            enrol_cancel(request)
            raise LoginRefused(_locked_message())
        raise LoginRefused(ENROL_FAILURE)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if has_confirmed_device(locked):  # a concurrent enrolment won; never add a second device
            enrol_cancel(request)
            raise EnrolmentExpired(ENROL_EXPIRED)
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
        User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
        audit_record("user.enrol", request=request, user=user, obj=user, device_id=device.pk)
    device.refresh_from_db()
    enrol_cancel(request)
    login_complete(request, user, device)
    account_notice(user, "enrolled", request=request)
    return user, next_url


def totp_qr_svg(device: TOTPDevice) -> str:
    """The enrolment QR code (otpauth URL) as an SVG data URI, for an authenticator app."""
    import segno

    return segno.make(device.config_url, error="m").svg_data_uri(scale=4)


# --- Password change -----------------------------------------------------------------------------------------

def password_change_complete(request, form) -> User:
    """Save a validated PasswordChangeForm, clear the forced change, keep this session signed in."""
    user = form.user
    user.must_change_password = False
    form.save()  # set_password + save (must_change_password saved with it)
    update_session_auth_hash(request, user)
    audit_record("user.password_change", request=request, user=user, obj=user)
    return user

