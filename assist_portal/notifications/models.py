from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from assist_portal.crypto import EncryptedJSONField
from assist_portal.sqlcache import CompiledWrites


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


class Notification(CompiledWrites, models.Model):
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
    # Reconciliation with HER-SYS after a restore (manage.py reconcile, issue 12): the newest revision and receipt
    # HER-SYS holds for this notification when the portal's own revisions do not reach it, and when that was found.
    hersys_revision = models.PositiveIntegerField(null=True, blank=True)
    hersys_receipt_id = models.CharField(max_length=40, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    # Hand-off (worklist state 医師確認待ち): a clerk asks a physician (optionally a named one) to check and confirm.
    # Notes may mention the patient: encrypted like the values.
    review_requested_at = models.DateTimeField(null=True, blank=True)
    review_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                            on_delete=models.PROTECT, related_name="+")
    review_physician = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="+")
    review_note = EncryptedJSONField(default=str, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    returned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    returned_note = EncryptedJSONField(default=str, blank=True)
    # Item ids of the priority items (Q&A 5) still missing at the last save: ids only, shown on the worklist.
    missing_priority = models.JSONField(default=list, blank=True)
    # Q&A 5: first reported with the minimum items only; the rest follows as an update (続報待ち until then).
    follow_up_pending = models.BooleanField("続報待ち", default=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = "発生届"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "patient_ref", "form"], condition=models.Q(status="draft"),
                                    name="one_open_draft_per_patient_and_form"),
        ]


class NotificationRevision(CompiledWrites, models.Model):
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
    # None only for a revision the portal had forgotten (a restore from backup) and took back from HER-SYS
    # (manage.py reconcile): who confirmed it is in the audit log of that time, not in the restored database.
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    confirmed_at = models.DateTimeField(default=timezone.now)
    # The document exactly as sent (built once at confirmation, encrypted, hashed) and its outbox row. The links
    # point from notifications to delivery only: the outbox knows no notification (related_name="+").
    payload = models.OneToOneField("delivery.Payload", on_delete=models.PROTECT, related_name="+")
    delivery = models.OneToOneField("delivery.Delivery", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    # What the physician saw on the review step (items as displayed, explicit answers, the diff, when the second
    # factor was proven) and the digest of the draft it confirmed; empty for service-level confirmations.
    review = EncryptedJSONField(default=dict, blank=True)
    reviewed_sha256 = models.CharField(max_length=64, blank=True)

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
class SearchToken(models.Model):
    """The worklist's search index over values encrypted at rest (notifications.search): keyed HMACs of normalised
    prefixes and exact values (patient ID, name, kana, birth date). Without SEARCH_INDEX_KEY a token says nothing."""

    hospital = models.ForeignKey("accounts.Hospital", on_delete=models.CASCADE, related_name="+")
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="search_tokens")
    token = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["hospital", "token"], name="search_token_lookup")]
        constraints = [models.UniqueConstraint(fields=["notification", "token"], name="one_search_token")]


class DeliveryAlert(models.Model):
    """One "people must act" notice per revision and problem (rejected, dead letter, not accepted in time): the
    e-mail goes out once, however often the problem is reported."""

    revision = models.ForeignKey(NotificationRevision, on_delete=models.CASCADE, related_name="alerts")
    problem = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["revision", "problem"], name="one_alert_per_problem")]


class FaxRecord(models.Model):
    """「FAXで届出済みとして記録」: the paper form of a revision was faxed to a health centre. Electronic delivery of
    that revision is held until someone decides: send it as well (agreed with the health centre) or FAX only."""

    class Decision(models.TextChoices):
        PENDING = "", "未定（電子送信は保留中）"
        ELECTRONIC = "electronic", "電子送信も行う（保健所と調整済み）"
        FAX_ONLY = "fax_only", "FAXのみで完了"

    revision = models.OneToOneField(NotificationRevision, on_delete=models.PROTECT, related_name="fax")
    sent_at = models.DateTimeField("FAX送付日時")
    health_centre = models.CharField("送付先の保健所", max_length=100)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    decision = models.CharField(max_length=12, choices=Decision.choices, blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)


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
