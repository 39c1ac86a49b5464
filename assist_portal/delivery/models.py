"""Transactional outbox: one Delivery per confirmed revision, one Attempt per try (like a webhook log)."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class Delivery(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "送信待ち"
        SENDING = "sending", "送信中"
        RETRYING = "retrying", "再送待ち"
        ACCEPTED = "accepted", "受理"
        REJECTED = "rejected", "差戻し"
        DEAD = "dead", "送信停止（要対応）"

    FINAL = (Status.ACCEPTED, Status.REJECTED)

    revision = models.OneToOneField("notifications.NotificationRevision", on_delete=models.PROTECT,
                                    related_name="delivery")
    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="deliveries")
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    receipt_id = models.CharField(max_length=40, blank=True)
    report_date = models.DateField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    redriven_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "送信"


class Attempt(models.Model):
    class Outcome(models.TextChoices):
        STARTED = "started", "送信開始"
        ACCEPTED = "accepted", "受理"
        RETRYABLE = "retryable", "一時的な失敗"
        PERMANENT = "permanent", "差戻し"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.STARTED)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["number"]
