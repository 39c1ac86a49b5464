from django.core.management.base import BaseCommand, CommandError

from assist_portal.accounts.admin_services import AccountError, user_create
from assist_portal.accounts.models import Hospital


class Command(BaseCommand):
    help = "個人アカウントを作成し、初期パスワードと認証アプリ登録用のURL（QRコード）を表示します。"

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=["physician", "clerk", "central_admin"])
        parser.add_argument("--hospital", default="", help="医療機関コード（医師・事務は必須）")
        parser.add_argument("--name", default="", help="氏名（姓　名）")

    def handle(self, *args, **o):
        hospital = Hospital.objects.filter(code=o["hospital"]).first() if o["hospital"] else None
        if o["hospital"] and hospital is None:
            raise CommandError(f"医療機関 {o['hospital']} が見つかりません。")
        try:
            user, password, device = user_create(username=o["username"], role=o["role"], hospital=hospital,
                                                 display_name=o["name"])
        except AccountError as exc:
            raise CommandError(str(exc))
        import segno

        self.stdout.write(f"作成しました: {user.username}（{user.get_role_display()}）")
        self.stdout.write(f"初期パスワード: {password}")
        self.stdout.write(f"認証アプリ登録用URL: {device.config_url}")
        segno.make(device.config_url, error="m").terminal(out=self.stdout, compact=True)
