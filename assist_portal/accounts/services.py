"""Sign-in: individual account, password + TOTP (django-otp), lockout after repeated failures."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.audit.services import audit_record

from .models import User

GENERIC_FAILURE = "ユーザー名、パスワード、またはワンタイムパスワードが正しくありません。"


class LoginRefused(Exception):
    pass


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


def login_verify(request, username: str, password: str, otp_token: str) -> User:
    """Check all three factors; raise LoginRefused with a message that does not tell which one failed."""
    username = (username or "").strip()
    candidate = User.objects.filter(username=username).first()
    if candidate is not None and candidate.is_locked():
        audit_record("login.refused_locked", request=request, user=candidate)
        minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
        raise LoginRefused(f"ログインに続けて失敗したため、このアカウントは一時的にロックされています。"
                           f"約{minutes}分後にもう一度お試しいただくか、管理者に連絡してください。")
    user = authenticate(request, username=username, password=password)
    if user is None:
        _register_failure(username, request, "password")
        raise LoginRefused(GENERIC_FAILURE)
    token = "".join(ch for ch in (otp_token or "") if ch.isdigit())
    device = None
    for candidate_device in TOTPDevice.objects.devices_for_user(user, confirmed=True):
        if candidate_device.verify_token(token):
            device = candidate_device
            break
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
