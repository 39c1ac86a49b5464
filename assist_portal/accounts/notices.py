"""E-mail to an account holder when their second factor is enrolled or reset (Django's e-mail framework).

Someone who enrolled an authenticator with a one-time password the holder never received, or an administrator
who reset the account, is then noticed by the holder. Without an address on file nothing is sent; either way
the attempt is audited (`user.notice`, no secret and no message text in the log)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from assist_portal.audit.services import audit_record, client_ip

log = logging.getLogger(__name__)

SUBJECTS = {
    "enrolled": "【HER-SYS登録補助】認証アプリが登録されました",
    "reset": "【HER-SYS登録補助】アカウントがリセットされました",
}


def _body(user, kind: str, *, by=None, request=None) -> str:
    when = timezone.localtime().strftime("%Y年%m月%d日 %H:%M")
    where = client_ip(request) or "不明"
    if kind == "enrolled":
        what = (f"{when} に、あなたのアカウント（ユーザー名: {user.username}）で認証アプリ（ワンタイムパスワード）が"
                f"登録されました（接続元: {where}）。")
    else:
        who = f"管理者（{by.username}）" if by is not None else "データセンターの運用担当"
        what = (f"{when} に、{who}があなたのアカウント（ユーザー名: {user.username}）の認証アプリの登録を削除し、"
                f"初期パスワードを再発行しました。次回のログイン時に認証アプリを登録し直してください。")
    return (f"{user.display_name or user.username} 様\n\n{what}\n\n"
            "心当たりがない場合は、すぐに所属の管理者に連絡してください。このメールに返信しないでください。\n\n"
            "HER-SYS 登録補助画面\n")


def account_notice(user, kind: str, *, by=None, request=None) -> bool:
    """Tell the holder of `user` (kind: "enrolled" | "reset"); True when the message was handed to the backend."""
    if kind not in SUBJECTS:
        raise ValueError(f"unknown notice {kind!r}")
    sent = False
    if user.email:
        try:
            sent = send_mail(SUBJECTS[kind], _body(user, kind, by=by, request=request), settings.DEFAULT_FROM_EMAIL,
                             [user.email], fail_silently=False) == 1
        except Exception:  # the account change stands; the failure is logged and audited, never raised
            log.exception("account notice %s for user %s could not be sent", kind, user.pk)
    audit_record("user.notice", request=request, user=by or user, obj=user, kind=kind, sent=sent,
                 has_address=bool(user.email))
    return sent
