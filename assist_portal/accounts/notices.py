"""E-mail to an account holder when their second factor is enrolled, a security key is added or removed, or the
account is reset (Django's e-mail framework).

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
    "key_added": "【HER-SYS登録補助】セキュリティキーが登録されました",
    "key_removed": "【HER-SYS登録補助】セキュリティキーの登録が削除されました",
}


def _body(user, kind: str, *, by=None, request=None, detail: str = "") -> str:
    when = timezone.localtime().strftime("%Y年%m月%d日 %H:%M")
    where = client_ip(request) or "不明"
    if kind == "enrolled":
        what = (f"{when} に、あなたのアカウント（ユーザー名: {user.username}）で認証アプリ（ワンタイムパスワード）が"
                f"登録されました（接続元: {where}）。")
    elif kind in ("key_added", "key_removed"):
        done = "登録されました" if kind == "key_added" else "登録が削除されました"
        what = (f"{when} に、あなたのアカウント（ユーザー名: {user.username}）でセキュリティキー「{detail}」が"
                f"{done}（接続元: {where}）。")
    else:
        who = f"管理者（{by.username}）" if by is not None else "データセンターの運用担当"
        what = (f"{when} に、{who}があなたのアカウント（ユーザー名: {user.username}）の認証アプリとセキュリティキーの登録を削除し、"
                f"初期パスワードを再発行しました。次回のログイン時に認証アプリを登録し直してください。")
    return (f"{user.display_name or user.username} 様\n\n{what}\n\n"
            "心当たりがない場合は、すぐに所属の管理者に連絡してください。このメールに返信しないでください。\n\n"
            "HER-SYS 登録補助画面\n")


def account_notice(user, kind: str, *, by=None, request=None, detail: str = "") -> bool:
    """Tell the holder of `user` (kind: one of SUBJECTS; `detail`: the key's name for a key notice); True when the
    message was handed to the backend."""
    if kind not in SUBJECTS:
        raise ValueError(f"unknown notice {kind!r}")
    sent = False
    if user.email:
        try:
            sent = send_mail(SUBJECTS[kind], _body(user, kind, by=by, request=request, detail=detail), settings.DEFAULT_FROM_EMAIL,
                             [user.email], fail_silently=False) == 1
        except Exception:  # the account change stands; the failure is logged and audited, never raised
            log.exception("account notice %s for user %s could not be sent", kind, user.pk)
    audit_record("user.notice", request=request, user=by or user, obj=user, kind=kind, sent=sent,
                 has_address=bool(user.email))
    return sent
