from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """The last sign of life of one Celery worker (its node name) or of the scheduler (beat)."""

    class Kind(models.TextChoices):
        WORKER = "worker", "ワーカー"
        SCHEDULER = "scheduler", "スケジューラ"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "ハートビート"

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"
