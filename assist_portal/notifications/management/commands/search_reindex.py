"""Rebuild the worklist's search index (after SEARCH_INDEX_KEY changed, or after a restore without the index)."""
from django.core.management.base import BaseCommand
from django.db import transaction

from assist_portal.notifications.models import Notification
from assist_portal.notifications.search import search_index_update


class Command(BaseCommand):
    help = "届出一覧の検索索引を作り直す（SEARCH_INDEX_KEY を変えた後など）"

    def handle(self, *args, **options):
        done = 0
        for pk in Notification.objects.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                row = Notification.objects.select_for_update().get(pk=pk)
                search_index_update(row)
            done += 1
        self.stdout.write(f"検索索引を作り直しました（{done}件）")
