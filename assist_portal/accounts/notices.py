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
CREDENTIAL_SUBJECTS = {
    "created": "【HER-SYS登録補助】アカウントを作成しました（初期パスワードのお知らせ）",
    "reset": "【HER-SYS登録補助】アカウントをリセットしました（初期パスワードのお知らせ）",
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


class NoticeNotSent(Exception):
    """The one-time password could not be handed to the e-mail backend (the account change must not stand)."""


def credential_notice(user, password: str, kind: str, *, by=None, request=None) -> None:
    """Send the one-time password of an account a central admin created or reset to its holder only.

    The central admin never sees it (accounts.admin_services): a data-centre operator cannot sign in as a
    hospital administrator and, through it, create an account that reads patient values. Raises NoticeNotSent
    when the message could not be sent, so the caller rolls the change back. The audit records that it was sent,
    never the password."""
    if kind not in CREDENTIAL_SUBJECTS:
        raise ValueError(f"unknown credential notice {kind!r}")
    when = timezone.localtime().strftime("%Y年%m月%d日 %H:%M")
    what = ("あなたのアカウントを作成しました" if kind == "created"
            else "あなたのアカウントの認証アプリの登録を削除し、初期パスワードを再発行しました")
    body = (f"{user.display_name or user.username} 様\n\n{when} に、データセンターの中央管理者（{getattr(by, 'username', '運用担当')}）が"
            f"{what}。\n\nユーザー名: {user.username}\n初期パスワード（一度だけ使えます）: {password}\n\n"
            "ログインすると、ご自身のスマートフォンの認証アプリの登録と、パスワードの変更を求められます。"
            "このパスワードは中央管理者には表示されていません。誰にも伝えないでください。\n"
            "心当たりがない場合は、ログインせずにデータセンターへ連絡してください。このメールに返信しないでください。\n\n"
            "HER-SYS 登録補助画面\n")
    try:
        sent = send_mail(CREDENTIAL_SUBJECTS[kind], body, settings.DEFAULT_FROM_EMAIL, [user.email],
                         fail_silently=False) == 1
    except Exception:
        log.exception("credential notice %s for user %s could not be sent", kind, user.pk)
        sent = False
    if not sent:
        raise NoticeNotSent(kind)
    audit_record("user.notice", request=request, user=by or user, obj=user, kind=f"credential_{kind}", sent=True,
                 has_address=True)


HOSPITAL_ADMINS_SUBJECT = "【HER-SYS登録補助】貴院の管理者アカウントが変更されました"


def hospital_admins_notice(subject_user, kind: str, *, by=None, request=None) -> int:
    """Tell the other active administrators of `subject_user`'s hospital that a central admin created or reset a
    hospital administrator account, so the hospital notices an account it did not ask for. Returns how many
    messages were handed to the backend (failures are logged; the change stands)."""
    from .models import User

    others = (User.objects.filter(hospital_id=subject_user.hospital_id, role=User.Role.HOSPITAL_ADMIN,
                                  is_active=True).exclude(pk=subject_user.pk).exclude(email=""))
    what = "作成" if kind == "created" else "リセット"
    when = timezone.localtime().strftime("%Y年%m月%d日 %H:%M")
    sent = 0
    for other in others:
        body = (f"{other.display_name or other.username} 様\n\n{when} に、データセンターの中央管理者"
                f"（{getattr(by, 'username', '運用担当')}）が貴院の管理者アカウント「{subject_user.username}」を{what}しました。"
                "初期パスワードは本人のメールアドレスにだけ送られています。\n"
                "貴院が依頼したものでない場合は、すぐにデータセンターへ連絡し、このアカウントのロックを依頼してください。\n\n"
                "HER-SYS 登録補助画面\n")
        try:
            sent += send_mail(HOSPITAL_ADMINS_SUBJECT, body, settings.DEFAULT_FROM_EMAIL, [other.email],
                              fail_silently=False)
        except Exception:
            log.exception("hospital admins notice for user %s could not be sent", subject_user.pk)
    audit_record("user.notice", request=request, user=by, obj=subject_user, kind=f"hospital_admins_{kind}",
                 sent=sent, has_address=sent > 0)
    return sent
