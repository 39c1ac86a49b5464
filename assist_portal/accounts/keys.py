"""Security keys and passkeys (WebAuthn) as a second factor beside TOTP, through django-otp-webauthn.

- **Registration** only from a session that already passed two factors (password + TOTP, or password + another
  key): the authenticator app stays everyone's first second factor and the way back in when a key is lost
  (an administrator's reset removes both). The holder is e-mailed when a key is added or removed.
- **Sign-in**: the password first (accounts.services.login_verify); with the one-time-code field left empty and a
  key registered, the password-verified user waits in the session (not signed in) for a key assertion, exactly as
  the first-sign-in enrolment waits for a code. A failed assertion counts towards the same lockout as a wrong code.
- **Re-check** (`second_factor_verify`): a signed-in person proves a factor again — a current TOTP code or an
  assertion of one of their keys against a challenge from `second_factor_challenge` — for a step that wants a
  recent second factor (the physician's review before confirmation).

The package's own views and JavaScript are not used: these ceremonies need the session's pending user, the lockout,
the audit log and Japanese messages. Its model (a django-otp Device, so `otp_login` and the OTP middleware treat a
key like any device) and its `WebAuthnHelper` (py_webauthn underneath: challenge, origin, RP id, signature
counter) are.
"""
from __future__ import annotations

import time
import unicodedata

from django.db import transaction
from django_otp_webauthn.exceptions import OTPWebAuthnApiError
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions

from assist_portal.audit.services import audit_record

from . import throttle
from .models import User
from .notices import account_notice

REGISTER_STATE = "accounts_key_register"
SIGN_IN_STATE = "accounts_key_sign_in"
ASSERT_STATE = "accounts_key_assert"
RECHECK_STATE = "accounts_key_recheck"
VERIFIED_AT = "otp_verified_at"  # session: when a second factor (TOTP or key) was last proven (epoch seconds); the same key as accounts.services.OTP_VERIFIED_AT_KEY
SIGN_IN_MAX_AGE_SECONDS = 10 * 60
NAME_MAX = 64  # django-otp's Device.name

KEY_NAME_TOO_LONG = f"キーの名前は{NAME_MAX}文字以内で入力してください。"
KEY_NAME_INVALID = "キーの名前に使えない文字が含まれています。"
REGISTER_FAILED = ("セキュリティキーを登録できませんでした。もう一度「セキュリティキーを登録」を押し、"
                   "キーに触れるか、指紋・顔・PINで確認してください。")
REGISTER_EXPIRED = "登録の手続きが見つかりません。もう一度「セキュリティキーを登録」を押してください。"
SIGN_IN_EXPIRED = "セキュリティキーでのログインの有効期限が切れました。もう一度ユーザー名とパスワードでログインしてください。"
SIGN_IN_FAILED = ("セキュリティキーで確認できませんでした。このアカウントに登録したキーを使って、もう一度お試しください"
                  "（キーが手元にない場合は、ログイン画面でワンタイムパスワードを入力してください）。")
SIGN_IN_LOCKED = ("続けて失敗したため、しばらくの間ログインできません。数分後にもう一度お試しいただくか、"
                  "管理者に連絡してください。")
RECHECK_FAILED = "本人確認ができませんでした。認証アプリの現在の6桁を入力するか、登録したセキュリティキーを使ってください。"


class KeyRefused(Exception):
    """A ceremony refused, with a message for the person."""


class KeySignInExpired(KeyRefused):
    """No (or no longer a valid) password-verified key sign-in in this session."""


class SecondFactorRefused(KeyRefused):
    pass


def _helper(request):
    return WebAuthnCredential.get_webauthn_helper(request=request)


# --- Selectors -------------------------------------------------------------------------------------------------

def keys_for_user(user) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk"))


def has_key(user) -> bool:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()


# --- Registration (signed in with two factors) -----------------------------------------------------------------

def key_name_clean(raw: str, *, user) -> str:
    name = unicodedata.normalize("NFKC", raw or "").strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in name):
        raise KeyRefused(KEY_NAME_INVALID)
    if len(name) > NAME_MAX:
        raise KeyRefused(KEY_NAME_TOO_LONG)
    return name or f"セキュリティキー{len(keys_for_user(user)) + 1}"


def key_register_begin(request, *, name: str) -> dict:
    """Creation options for the signed-in user's new key (its existing keys excluded); the challenge and the chosen
    name wait in the session for `key_register_complete`."""
    user = request.user
    clean = key_name_clean(name, user=user)
    options, state = _helper(request).register_begin(user=user)
    request.session[REGISTER_STATE] = {**state, "name": clean, "expires": time.time() + SIGN_IN_MAX_AGE_SECONDS}
    return options


def key_register_complete(request, data: dict) -> WebAuthnCredential:
    """Verify the authenticator's answer (challenge, origin, RP id) and keep the key; audit and tell the holder."""
    user = request.user
    state = request.session.pop(REGISTER_STATE, None)
    request.session.save()  # a challenge is answered once, even when the answer is refused
    if not isinstance(state, dict) or float(state.get("expires", 0)) < time.time():
        raise KeyRefused(REGISTER_EXPIRED)
    try:
        with transaction.atomic(), rewrite_exceptions(logger=None):
            device = _helper(request).register_complete(user=user, state=state, data=data)
            device.name = state["name"]
            device.save(update_fields=["name"])
            audit_record("user.key_add", request=request, user=user, obj=user, key_id=device.pk)
    except (OTPWebAuthnApiError, KeyError, TypeError, ValueError) as exc:
        audit_record("user.key_refused", request=request, user=user, obj=user, step="register",
                     reason=getattr(exc, "code", type(exc).__name__))
        raise KeyRefused(REGISTER_FAILED) from exc
    account_notice(user, "key_added", request=request, detail=device.name)
    return device


def key_remove(request, key_id) -> WebAuthnCredential | None:
    """Remove one of the signed-in user's own keys; None when `key_id` is not one (the caller answers 404)."""
    user = request.user
    device = (WebAuthnCredential.objects.filter(user=user, pk=key_id).first()
              if isinstance(key_id, int) else None)
    if device is None:
        return None
    with transaction.atomic():
        device.delete()
        audit_record("user.key_remove", request=request, user=user, obj=user, key_id=key_id)
    account_notice(user, "key_removed", request=request, detail=device.name)
    return device


# --- Sign-in: password first, then the key ---------------------------------------------------------------------

def key_sign_in_start(request, user: User, next_url: str = "") -> None:
    """Password verified, no code typed, a key registered: remember the user (not signed in) for the key step."""
    request.session.cycle_key()
    request.session[SIGN_IN_STATE] = {"user_id": user.pk, "next": next_url,
                                      "expires": time.time() + SIGN_IN_MAX_AGE_SECONDS}


def key_sign_in_cancel(request) -> None:
    request.session.pop(SIGN_IN_STATE, None)
    request.session.pop(ASSERT_STATE, None)


def key_sign_in_pending(request) -> tuple[User, str]:
    state = request.session.get(SIGN_IN_STATE)
    if not isinstance(state, dict) or float(state.get("expires", 0)) < time.time():
        key_sign_in_cancel(request)
        raise KeySignInExpired(SIGN_IN_EXPIRED)
    user = User.objects.filter(pk=state.get("user_id"), is_active=True).select_related("hospital").first()
    if user is None or not has_key(user) or (user.hospital_id is not None and not user.hospital_is_active):
        key_sign_in_cancel(request)
        raise KeySignInExpired(SIGN_IN_EXPIRED)
    return user, state.get("next") or ""


def key_sign_in_begin(request) -> dict:
    """Request options naming the pending user's keys (they proved the password: naming their keys tells them
    nothing new)."""
    user, _ = key_sign_in_pending(request)
    if throttle.is_locked(throttle.Source.of(request, user.username)):
        audit_record("login.refused_locked", request=request, user=user)
        key_sign_in_cancel(request)
        raise KeySignInExpired(SIGN_IN_LOCKED)
    options, state = _helper(request).authenticate_begin(user=user, require_user_verification=False)
    request.session[ASSERT_STATE] = state
    return options


def _assertion_check(request, user, state_key: str, data: dict) -> WebAuthnCredential:
    """The assertion `data` against the challenge kept under `state_key` (used once), by one of `user`'s keys."""
    state = request.session.pop(state_key, None)
    request.session.save()
    if not isinstance(state, dict):
        raise KeyRefused("no challenge")
    with rewrite_exceptions(logger=None):
        device = _helper(request).authenticate_complete(user=user, state=state, data=data)
    if not device.confirmed or device.user_id != user.pk:
        raise KeyRefused("not this user's key")
    return device


def key_sign_in_complete(request, data: dict) -> tuple[User, str]:
    """Check the assertion of the pending user's key; on success sign them in (password + key)."""
    from .services import login_complete  # sign-in completion lives beside the TOTP path

    user, next_url = key_sign_in_pending(request)
    source = throttle.Source.of(request, user.username)
    if throttle.is_locked(source):
        audit_record("login.refused_locked", request=request, user=user)
        key_sign_in_cancel(request)
        raise KeySignInExpired(SIGN_IN_LOCKED)
    try:
        device = _assertion_check(request, user, ASSERT_STATE, data)
    except (KeyRefused, OTPWebAuthnApiError, KeyError, TypeError, ValueError) as exc:
        throttle.failure_register(source, user=user, request=request)
        audit_record("login.failure", request=request, user=user, reason="webauthn",
                     detail=getattr(exc, "code", type(exc).__name__))
        if throttle.is_locked(source):
            key_sign_in_cancel(request)
            raise KeySignInExpired(SIGN_IN_LOCKED) from exc
        raise KeyRefused(SIGN_IN_FAILED) from exc
    throttle.success_register(source)
    key_sign_in_cancel(request)
    login_complete(request, user, device, method="webauthn")
    return user, next_url


# --- Re-check of a signed-in person (e.g. the physician's review before confirmation) ---------------------------

def second_factor_challenge(request) -> dict:
    """Request options for the signed-in user's keys, for a `second_factor_verify(request, assertion=…)`; {} when
    they have none (then only a TOTP code can re-check them)."""
    user = request.user
    if not has_key(user):
        return {}
    options, state = _helper(request).authenticate_begin(user=user, require_user_verification=False)
    request.session[RECHECK_STATE] = state
    return options


def second_factor_verify(request, *, otp_token: str = "", assertion: dict | None = None):
    """Prove a second factor again for the signed-in user: a current TOTP code of their authenticator app, or an
    assertion of one of their keys (answering the challenge of `second_factor_challenge`). Returns the device;
    raises SecondFactorRefused (a failure counts towards the sign-in lockout). The time is kept in the session:
    `second_factor_recent(request, seconds)` tells a later step whether it is recent enough."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = request.user
    source = throttle.Source.of(request, user.username)
    if throttle.is_locked(source):
        raise SecondFactorRefused(SIGN_IN_LOCKED)
    device = None
    if assertion:
        try:
            device = _assertion_check(request, user, RECHECK_STATE, assertion)
        except (KeyRefused, OTPWebAuthnApiError, KeyError, TypeError, ValueError):
            device = None
    else:
        token = "".join(ch for ch in unicodedata.normalize("NFKC", otp_token or "") if ch.isdigit())
        if token:
            device = next((d for d in TOTPDevice.objects.devices_for_user(user, confirmed=True)
                           if d.verify_token(token)), None)
    if device is None:
        throttle.failure_register(source, user=user, request=request)
        audit_record("login.failure", request=request, user=user, reason="recheck_webauthn" if assertion
                     else "recheck_otp")
        raise SecondFactorRefused(SIGN_IN_LOCKED if throttle.is_locked(source) else RECHECK_FAILED)
    request.session[VERIFIED_AT] = time.time()
    return device


def second_factor_recent(request, seconds: float) -> bool:
    """Whether this session proved a second factor (sign-in or re-check) within the last `seconds`."""
    return time.time() - float(request.session.get(VERIFIED_AT) or 0) <= seconds
