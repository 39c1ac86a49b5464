from django.core.management.base import BaseCommand, CommandError

from assist_portal.accounts.admin_services import AccountError, user_create
from assist_portal.accounts.models import Hospital


class Command(BaseCommand):
    help = ("個人アカウントを作成し、一度だけ使える初期パスワードを表示します。"
            "認証アプリは本人が初回ログイン時に登録し、続けてパスワードを変更します。")

    def add_arguments(self, parser):
        parser.add_argument("username")
        # As the data centre: administrators only. Physicians and clerks are created by their hospital's
        # administrator (/hospital/staff/), never from the data centre.
        parser.add_argument("--role", required=True, choices=["hospital_admin", "central_admin"])
        parser.add_argument("--hospital", default="", help="医療機関コード（医療機関の管理者は必須）")
        parser.add_argument("--email", required=True, help="本人のメールアドレス（認証アプリの登録・リセットを通知）")
        parser.add_argument("--name", default="", help="氏名（姓　名）")

    def handle(self, *args, **o):
        hospital = Hospital.objects.filter(code=o["hospital"]).first() if o["hospital"] else None
        if o["hospital"] and hospital is None:
            raise CommandError(f"医療機関 {o['hospital']} が見つかりません。")
        try:
            user, password = user_create(username=o["username"], role=o["role"], hospital=hospital,
                                         email=o["email"], display_name=o["name"])
        except AccountError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"作成しました: {user.username}（{user.get_role_display()}）")
        self.stdout.write(f"初期パスワード（一度だけ使えます）: {password}")
        self.stdout.write("本人に安全な方法で伝えてください。本人は初回ログイン時に認証アプリを登録し、"
                          "続けてパスワードを変更します。")
