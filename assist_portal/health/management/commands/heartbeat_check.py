"""Container healthcheck of a worker (or of the scheduler): exit 0 when its heartbeat is fresh, 1 otherwise.

    python manage.py heartbeat_check --worker hersys@$HOSTNAME
    python manage.py heartbeat_check --scheduler
"""
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from assist_portal.health.models import Heartbeat


class Command(BaseCommand):
    help = "ワーカー（またはスケジューラ）のハートビートが新しければ終了コード0、古いか無ければ1"

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--worker", help="Celery node name, e.g. hersys@host")
        who.add_argument("--scheduler", action="store_true")

    def handle(self, *args, worker=None, scheduler=False, **options):
        rows = Heartbeat.objects.filter(kind=Heartbeat.Kind.SCHEDULER) if scheduler else \
            Heartbeat.objects.filter(kind=Heartbeat.Kind.WORKER, name=worker)
        seen = rows.order_by("-seen_at").values_list("seen_at", flat=True).first()
        limit = timezone.now() - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
        label = "スケジューラ" if scheduler else worker
        if seen is None or seen < limit:
            self.stderr.write(f"{label} から応答がありません")
            raise SystemExit(1)
        if options["verbosity"] > 1:
            self.stdout.write(f"{label}: OK")
