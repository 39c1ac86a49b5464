"""manage.py reconcile --since <the dump's time>: after a restore from backup, bring the portal in line with what
HER-SYS holds (assist_portal.notifications.reconcile) and list what needs a person. Runs where the HER-SYS
client certificate is (the VPN side, like the `hersys` worker). Safe to run again."""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from assist_portal.accounts.models import Hospital
from assist_portal.notifications.reconcile import hospital_reconcile


class Command(BaseCommand):
    help = ("バックアップからの復元後に、HER-SYSが保持している届出とポータルを照合し、"
            "ポータルを一致させます。人の対応が必要なものを一覧にします。")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True,
                            help="バックアップ（ダンプ）を取得した日時（ISO 8601、例: 2024-01-10T03:00+09:00）。"
                                 "余裕を見て1時間前から照合します。")
        parser.add_argument("--hospital", action="append", default=[], metavar="CODE",
                            help="照合する医療機関コード（複数可。省略時はすべて）")
        parser.add_argument("--margin-minutes", type=int, default=60)

    def handle(self, *args, **options):
        since = parse_datetime(options["since"])
        if since is None:
            raise CommandError("--since は ISO 8601 の日時で指定してください（例: 2024-01-10T03:00+09:00）。")
        if timezone.is_naive(since):
            since = timezone.make_aware(since)
        since -= timedelta(minutes=options["margin_minutes"])
        hospitals = Hospital.objects.order_by("code")
        if options["hospital"]:
            hospitals = hospitals.filter(code__in=options["hospital"])
            missing = set(options["hospital"]) - set(hospitals.values_list("code", flat=True))
            if missing:
                raise CommandError(f"医療機関コードが見つかりません: {', '.join(sorted(missing))}")
        todo = []
        for hospital in hospitals:
            report = hospital_reconcile(hospital, since)
            self.stdout.write(f"{hospital.code}: HER-SYSの届出 {report.checked}件を照合、"
                              f"{len(report.findings)}件を処理しました。")
            for finding in report.findings:
                mark = "要対応" if finding.needs_person else "処理済"
                self.stdout.write(f"  [{mark}] {finding.notification} {finding.receipt_id} {finding.message}")
            todo += [(hospital.code, f) for f in report.needs_person]
        self.stdout.write(f"reconcile: needs_person={len(todo)}")
        if todo:
            self.stdout.write("人の対応が必要なもの:")
            for code, finding in todo:
                self.stdout.write(f"  {code} {finding.notification} {finding.receipt_id} {finding.message}")
