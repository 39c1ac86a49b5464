"""Sign-in: individual account, password + TOTP (django-otp), brute-force lockout per source (accounts.throttle).

First sign-in of an account without a confirmed TOTP device: the password alone does not log in; it opens a short
enrolment step (the password-verified user id is kept in the session) where the user scans a fresh TOTP secret
and proves it with a current code. Accounts whose password an administrator chose must change it first.
"""
from __future__ import annotations

import time

from django.contrib.auth import authenticate, update_session_auth_hash
from django.db import transaction
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.audit.services import audit_record

from . import throttle
from .keys import (  # the second factor's re-check, for a step that wants a recent one (the review before confirming)
    VERIFIED_AT,
    has_key,
    second_factor_challenge,
    second_factor_recent,
    second_factor_verify,
)
from .models import User
from .notices import account_notice

# One message for a wrong user name, password or code AND for a locked source: nothing tells which names exist.
GENERIC_FAILURE = ("ユーザー名、パスワード、またはワンタイムパスワードが正しくありません。"
                   "続けて失敗すると、しばらくの間ログインできなくなります（正しく入力してもログインできない場合は、"
                   "数分後にもう一度お試しいただくか、管理者に連絡してください）。")
ENROL_FAILURE = "ワンタイムパスワードが正しくありません。認証アプリに表示されている現在の6桁を入力してください。"
ENROL_EXPIRED = "認証アプリの登録手続きの有効期限が切れました。もう一度ユーザー名とパスワードでログインしてください。"
# Only after the password was proven (enrolment): telling the holder that the account is locked reveals nothing.
ENROL_LOCKED = ("ワンタイムパスワードを続けて間違えたため、しばらくの間ログインできません。"
                "数分後にもう一度お試しいただくか、管理者に連絡してください。")
ENROL_SESSION_KEY = "accounts_enrol"
ENROL_MAX_AGE_SECONDS = 10 * 60


__all__ = ["second_factor_challenge", "second_factor_recent", "second_factor_verify"]


class LoginRefused(Exception):
    pass


class KeyStepRequired(Exception):
    """Password right, no one-time code typed, and the account has a security key: the caller starts the key step
    (`accounts.keys.key_sign_in_start`); the user is NOT signed in."""

    def __init__(self, user: User):
        super().__init__(user.username)
        self.user = user


class EnrolmentExpired(Exception):
    """No (or no longer a valid) password-verified enrolment in this session."""


def _register_failure(source: throttle.Source, request, reason: str, user: User | None = None) -> None:
    """Count and audit one failed attempt. An unknown user name is audited by its keyed hash only (a password
    typed into the user-name field must not end up in the log or its CSV export)."""
    user = user if user is not None else User.objects.filter(username=source.username).first()
    throttle.failure_register(source, user=user, request=request)
    if user is not None:
        audit_record("login.failure", request=request, user=user, reason=reason)
    else:
        audit_record("login.failure", request=request, reason=reason, object_type="username",
                     object_id=throttle.name_hash(source.username))


def _digits(token: str) -> str:
    return "".join(ch for ch in (token or "") if ch.isdigit())


def has_confirmed_device(user: User) -> bool:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def login_verify(request, username: str, password: str, otp_token: str) -> tuple[User, TOTPDevice | None]:
    """Check the factors; raise LoginRefused with one message whatever failed, locked sources included.

    Returns (user, device) when password and code are right. Returns (user, None) when the password is right and
    the account has no confirmed TOTP device yet: the caller must start the enrolment step (`enrol_start`), the
    user is NOT logged in. An account with a confirmed device always needs its code — or, with the code left
    empty, one of its security keys: KeyStepRequired is raised for the key step.
    """
    source = throttle.Source.of(request, username)
    locked = throttle.is_locked(source)
    # The password is checked even for a locked source, so the answer takes as long (no timing hint either).
    user = authenticate(request, username=source.username, password=password)
    if locked:
        known = user or User.objects.filter(username=source.username).first()
        audit_record("login.refused_locked", request=request, user=known,
                     object_type="" if known else "username",
                     object_id="" if known else throttle.name_hash(source.username))
        raise LoginRefused(GENERIC_FAILURE)
    if user is None:
        _register_failure(source, request, "password")
        raise LoginRefused(GENERIC_FAILURE)
    if user.hospital_id is not None and not user.hospital_is_active:
        audit_record("login.failure", request=request, user=user, reason="hospital_inactive")
        raise LoginRefused(GENERIC_FAILURE)
    devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True))
    if not devices:
        return user, None
    token = _digits(otp_token)
    if not token and has_key(user):
        raise KeyStepRequired(user)
    device = next((d for d in devices if d.verify_token(token)), None)
    if device is None:
        _register_failure(source, request, "otp", user)
        raise LoginRefused(GENERIC_FAILURE)
    throttle.success_register(source)
    return user, device


def login_complete(request, user, device, *, method: str = "totp") -> None:
    from django.contrib.auth import login

    login(request, user)
    otp_login(request, device)
    otp_mark_verified(request)
    audit_record("login.success", request=request, user=user, method=method)


# --- A recent second factor (the final click of a confirmation) --------------------------------------------------

OTP_VERIFIED_AT_KEY = VERIFIED_AT  # one session key for TOTP and security keys (accounts.keys)
OTP_RECHECK_FAILURE = "ワンタイムパスワードが正しくありません。認証アプリに表示されている現在の6桁を入力してください。"


def otp_mark_verified(request, when: float | None = None) -> None:
    """Remember when this session last proved the second factor (sign-in or a re-check)."""
    request.session[OTP_VERIFIED_AT_KEY] = when if when is not None else time.time()


def otp_verified_recently(request, minutes: float | None = None) -> bool:
    """Whether the session proved the second factor within `minutes` (default OTP_RECHECK_MINUTES)."""
    from django.conf import settings

    minutes = settings.OTP_RECHECK_MINUTES if minutes is None else minutes
    when = request.session.get(OTP_VERIFIED_AT_KEY)
    return isinstance(when, (int, float)) and 0 <= time.time() - when <= minutes * 60


def otp_recheck(request, user, token: str) -> bool:
    """Check a fresh TOTP code of the signed-in user (django-otp refuses a code already used); audited both ways.
    Wrong codes count towards the sign-in lockout of this account and address."""
    source = throttle.Source.of(request, user.username)
    if throttle.is_locked(source):
        audit_record("otp.recheck_failure", request=request, user=user, reason="locked")
        return False
    devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True))
    device = next((d for d in devices if d.verify_token(_digits(token))), None)
    if device is None:
        throttle.failure_register(source, user=user, request=request)
        audit_record("otp.recheck_failure", request=request, user=user, reason="otp")
        return False
    otp_mark_verified(request)
    audit_record("otp.recheck", request=request, user=user)
    return True


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
    if user.hospital_id is not None and not user.hospital_is_active:
        enrol_cancel(request)
        raise EnrolmentExpired(ENROL_EXPIRED)
    source = throttle.Source.of(request, user.username)
    if throttle.is_locked(source):
        audit_record("login.refused_locked", request=request, user=user)
        enrol_cancel(request)
        raise LoginRefused(ENROL_LOCKED)
    if not device.verify_token(_digits(otp_token)):
        _register_failure(source, request, "enrol_otp", user)
        if throttle.is_locked(source):
            enrol_cancel(request)
            raise LoginRefused(ENROL_LOCKED)
        raise LoginRefused(ENROL_FAILURE)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if has_confirmed_device(locked):  # a concurrent enrolment won; never add a second device
            enrol_cancel(request)
            raise EnrolmentExpired(ENROL_EXPIRED)
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
        throttle.success_register(source)
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

