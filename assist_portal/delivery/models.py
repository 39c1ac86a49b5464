"""Transactional outbox (like saleor's EventPayload → EventDelivery → EventDeliveryAttempt).

`Payload`: the exact bytes to send, built once by the caller, encrypted at rest, never changed (only erased by the
retention purge). `Delivery`: one send of one payload to HER-SYS, ordered within its `stream` by `sequence`.
`Attempt`: one try. The outbox knows nothing about what the bytes mean or who produced them.
"""
from __future__ import annotations

import hashlib

from django.db import models
from django.utils import timezone

from assist_portal.crypto import EncryptedBytesField
from assist_portal.sqlcache import CompiledWrites


class Payload(CompiledWrites, models.Model):
    """Bytes frozen when they were produced; every attempt of every delivery of it sends exactly these."""

    content = EncryptedBytesField(null=True, blank=True)  # None: erased (purged_at) or never built (missing)
    sha256 = models.CharField(max_length=64, blank=True)
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    purged_at = models.DateTimeField(null=True, blank=True)
    # Why there is no content although nothing was purged (e.g. an old revision that could not be frozen).
    missing_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "送信データ"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Payload is immutable: create a new one (the purge erases it with an update)")
        if self.content is not None:
            self.sha256 = hashlib.sha256(bytes(self.content)).hexdigest()
        super().save(*args, **kwargs)

    @property
    def available(self) -> bool:
        return self.content is not None and self.purged_at is None


class Delivery(CompiledWrites, models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "送信待ち"
        SENDING = "sending", "送信中"
        RETRYING = "retrying", "再送待ち"
        ACCEPTED = "accepted", "受理"
        REJECTED = "rejected", "差戻し"
        DEAD = "dead", "送信停止（要対応）"
        # Held by people (e.g. the paper form was faxed): the worker never sends it until it is released (→ queued)
        # or withheld for good (FAX only: final, never sent).
        HELD = "held", "送信保留（FAX送付済み）"
        WITHHELD = "withheld", "送信しない（FAXのみで完了）"

    FINAL = (Status.ACCEPTED, Status.REJECTED, Status.WITHHELD)

    payload = models.ForeignKey(Payload, on_delete=models.PROTECT, related_name="deliveries")
    # Ordering: within one stream (e.g. one notification), a delivery waits until every lower sequence is final.
    stream = models.CharField(max_length=100)
    sequence = models.PositiveIntegerField()
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
    # Reconciliation (issue 12): when the product last asked HER-SYS what it holds for this stream, what it heard
    # (Check), and the newest revision HER-SYS reported holding (a later revision must be numbered above it).
    hersys_checked_at = models.DateTimeField(null=True, blank=True)
    hersys_check = models.CharField(max_length=12, blank=True)
    hersys_revision = models.PositiveIntegerField(null=True, blank=True)

    class Check(models.TextChoices):
        ABSENT = "absent", "HER-SYSに未登録"
        HELD = "held", "HER-SYSに登録済み"
        OTHER = "other", "HER-SYSに別の内容が登録済み"
        UNREACHABLE = "unreachable", "HER-SYSに照会できず"

    PENDING = (Status.QUEUED, Status.RETRYING, Status.SENDING)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "送信"
        constraints = [models.UniqueConstraint(fields=["stream", "sequence"], name="one_delivery_per_sequence")]


class Attempt(CompiledWrites, models.Model):
    class Outcome(models.TextChoices):
        STARTED = "started", "送信開始"
        ACCEPTED = "accepted", "受理"
        RETRYABLE = "retryable", "一時的な失敗"
        PERMANENT = "permanent", "差戻し"
        # The worker died (or lost its lease) mid-send: the outcome is unknown; the same key is sent again.
        ABANDONED = "abandoned", "中断（ワーカー停止）"
        # Not a send: HER-SYS was asked what it holds and already had exactly this revision.
        RECONCILED = "reconciled", "照会で受理を確認"

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
