from django.conf import settings
from django.core.management.base import BaseCommand

from assist_portal.notifications.services import notifications_purge


class Command(BaseCommand):
    help = "保存期間を過ぎた送信済み届出の患者データを消去します（監査ログ・受付番号は残ります）。"

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.PATIENT_DATA_RETENTION_DAYS)

    def handle(self, *args, **options):
        count = notifications_purge(options["days"])
        self.stdout.write(f"{count}件の届出の患者データを消去しました。")
