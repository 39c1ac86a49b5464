from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from assist_portal.crypto import EncryptedJSONField


class Extract(models.Model):
    """What a hospital connector pushed for one patient, after `mapping` ran over it."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.CASCADE, related_name="extracts")
    patient_ref = models.CharField("患者ID", max_length=64, db_index=True)
    format = models.CharField(max_length=20)
    items = EncryptedJSONField(default=dict)
    provenance = models.JSONField(default=dict)
    suggestions = EncryptedJSONField(default=dict)
    warnings = EncryptedJSONField(default=list)
    payload_sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)


class LaunchToken(models.Model):
    """Server side of a one-time launch URL: the URL carries a signed `jti`, this row makes it single-use."""

    jti = models.CharField(max_length=64, unique=True)
    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.CASCADE, related_name="+")
    extract = models.ForeignKey(Extract, on_delete=models.CASCADE, related_name="launch_tokens")
    patient_ref = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")


class Notification(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "下書き"
        CONFIRMED = "confirmed", "確定済み"
        WITHDRAWN = "withdrawn", "取下げ"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.PROTECT, related_name="notifications")
    patient_ref = models.CharField("患者ID", max_length=64, db_index=True)
    extract = models.ForeignKey(Extract, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    definition = models.ForeignKey("formdefs.FormDefinition", on_delete=models.PROTECT, related_name="+")
    # The form chosen when the notification was opened (= definition.form; drafts migrate within it only). Kept
    # on the row so "one open draft per patient and form" is a database constraint.
    form = models.CharField("様式", max_length=40)
    values = EncryptedJSONField(default=dict)
    provenance = models.JSONField(default=dict)
    suggestions = EncryptedJSONField(default=dict)
    # The name is kept apart (encrypted too) only to list drafts for the hospital's own staff.
    display_name = EncryptedJSONField(default=str)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    has_unsent_changes = models.BooleanField(default=True)
    lock_version = models.PositiveIntegerField(default=1)
    revision = models.PositiveIntegerField(default=0)
    migration_report = EncryptedJSONField(default=dict, blank=True)
    # Q&A 8: the report date of each diagnosis class is the first day it was reported ({class: date}).
    class_report_dates = EncryptedJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    purged_at = models.DateTimeField(null=True, blank=True)
    # Q&A 5: first reported with the minimum items only; the rest follows as an update (続報待ち until then).
    follow_up_pending = models.BooleanField("続報待ち", default=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = "発生届"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "patient_ref", "form"], condition=models.Q(status="draft"),
                                    name="one_open_draft_per_patient_and_form"),
        ]


class NotificationRevision(models.Model):
    """One confirmed state, exactly as sent. Never changed after it is written."""

    class Kind(models.TextChoices):
        NEW = "completed", "新規"
        UPDATE = "amended", "修正"
        WITHDRAWAL = "stopped", "取下げ"

    class Scope(models.TextChoices):
        FULL = "full", "全項目"
        MINIMUM = "minimum", "最小限の項目（Q&A 5、続報あり）"

    notification = models.ForeignKey(Notification, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.FULL)
    definition = models.ForeignKey("formdefs.FormDefinition", on_delete=models.PROTECT, related_name="+")
    values = EncryptedJSONField(default=dict)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(default=timezone.now)
    # The document exactly as sent (built once at confirmation, encrypted, hashed) and its outbox row. The links
    # point from notifications to delivery only: the outbox knows no notification (related_name="+").
    payload = models.OneToOneField("delivery.Payload", on_delete=models.PROTECT, related_name="+")
    delivery = models.OneToOneField("delivery.Delivery", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["notification", "number"], name="one_revision_number")]


class EmrChange(models.Model):
    """What a newer EMR extract says differently from the notification, for one item (or one test row): never
    applied by itself — a person accepts or dismisses it. A dismissed change stays dismissed for the same source
    value (`fingerprint`, a keyed hash: the value itself is stored only encrypted)."""

    class Kind(models.TextChoices):
        VALUE = "value", "値の変更"
        TEST_ADD = "test_add", "検査の追加"
        TEST_UPDATE = "test_update", "検査の変更"
        TEST_REMOVE = "test_remove", "検査の取消"
        CLASS_CHANGE = "class_change", "類型の変更"

    class Status(models.TextChoices):
        PENDING = "pending", "未確認"
        ACCEPTED = "accepted", "反映"
        DISMISSED = "dismissed", "反映しない"
        SUPERSEDED = "superseded", "新しい抽出で不要"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="emr_changes")
    extract = models.ForeignKey(Extract, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    item_id = models.CharField(max_length=120)
    # a test row's identity (method|specimen|collection date), keyed-hashed like the fingerprint; "" for items
    row_key = models.CharField(max_length=64, blank=True, default="")
    new_value = EncryptedJSONField(default=None, null=True)
    previous_value = EncryptedJSONField(default=None, null=True)
    source = models.CharField(max_length=200, blank=True, default="")  # provenance string, no patient values
    fingerprint = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    detected_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        ordering = ["detected_at", "id"]
        indexes = [models.Index(fields=["notification", "status"], name="emr_change_open")]


class AutosavedInput(models.Model):
    """What one person typed on a notification's page and has not saved yet (autosave as they type): only the
    fields that differ from the notification, never suggestions. Restored on their next visit; gone once saved."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    values = EncryptedJSONField(default=dict)
    based_on_version = models.PositiveIntegerField(default=0)
    saved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "user"], name="one_autosave_per_person")]
