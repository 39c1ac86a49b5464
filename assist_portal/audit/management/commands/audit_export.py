import sys

from django.core.management.base import BaseCommand

from assist_portal.audit.selectors import audit_csv_rows, audit_events


class Command(BaseCommand):
    help = "監査ログをCSVで出力します（標準出力）。"

    def add_arguments(self, parser):
        parser.add_argument("--hospital", default="")
        parser.add_argument("--since", default="", help="YYYY-MM-DD")
        parser.add_argument("--until", default="", help="YYYY-MM-DD")

    def handle(self, *args, **o):
        for line in audit_csv_rows(audit_events(hospital_code=o["hospital"], since=o["since"], until=o["until"])):
            sys.stdout.write(line)
