"""Append-only audit log (Q&A 24): who, when, what, from where. No patient data in `detail`."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from assist_portal.sqlcache import CompiledWrites


class AppendOnlyError(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("監査ログは変更できません")

    def delete(self):
        raise AppendOnlyError("監査ログは削除できません")


class AuditEvent(CompiledWrites, models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    hospital_code = models.CharField(max_length=20, blank=True, db_index=True)
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "監査イベント"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("監査ログは変更できません")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("監査ログは削除できません")
