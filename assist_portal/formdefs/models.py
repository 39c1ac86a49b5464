"""Central form definitions: data, not code. Published definitions are immutable and content-addressed."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

#: The form key of definitions made before forms were keyed (decision 4: every legacy row is a COVID-19 form).
LEGACY_FORM = "covid19"


class ImmutableDefinitionError(Exception):
    pass


#: content_hash → the content of a published definition, parsed (see FormDefinition.refresh_from_db)
_PUBLISHED_CONTENT: dict[str, dict] = {}
_PUBLISHED_CONTENT_MAX = 256  # published versions of every form; beyond that, read from the database as before


class FormDefinition(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "下書き"
        PUBLISHED = "published", "公開済み"

    #: The stable key of the notification form this definition is a version of (e.g. "covid19", "ehec"): the
    #: definition's own "form" when it states one. Assignments, drafts and draft migration stay within a form.
    form = models.CharField("様式", max_length=40, db_index=True)
    version = models.CharField("版", max_length=40)
    title = models.CharField("名称", max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    definition = models.JSONField()
    content_hash = models.CharField(max_length=64, db_index=True)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "様式定義"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["form", "version"], condition=models.Q(status="published"),
                                    name="one_published_definition_per_form_version"),
        ]

    def __str__(self) -> str:
        return f"{self.form} {self.version} ({self.get_status_display()})"

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        """A published definition's content never changes and its `content_hash` is the hash of that content: read
        where its `definition` column was left out (the hot reads of the form page and the confirmation defer it,
        issue 13), it comes from this process's copy of that content, parsed once, instead of ~20 KB of JSON
        fetched and parsed on every request. Callers treat definitions as read-only (the editor deep-copies)."""
        if (fields is not None and list(fields) == ["definition"] and from_queryset is None
                and "status" not in self.get_deferred_fields() and self.status == self.Status.PUBLISHED
                and "content_hash" not in self.get_deferred_fields() and self.content_hash):
            cached = _PUBLISHED_CONTENT.get(self.content_hash)
            if cached is None:
                super().refresh_from_db(using=using, fields=fields)
                if len(_PUBLISHED_CONTENT) < _PUBLISHED_CONTENT_MAX:
                    _PUBLISHED_CONTENT[self.content_hash] = self.definition
                return
            self.definition = cached
            return
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)

    @property
    def disease(self) -> str:
        """The disease the form notifies, as the definition names it (empty for a form imported without one)."""
        return str(self.definition.get("disease") or "") if isinstance(self.definition, dict) else ""

    @property
    def heading(self) -> str:
        """What a user calls this form: 「<disease> 発生届」, else the definition's title, else the form key."""
        if self.disease:
            return f"{self.disease} 発生届"
        title = self.definition.get("title") if isinstance(self.definition, dict) else ""
        return str(title or self.title or self.form)

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    def save(self, *args, **kwargs):
        if not self._state.adding:
            stored = FormDefinition.objects.filter(pk=self.pk).values("status", "content_hash").first()
            if stored and stored["status"] == self.Status.PUBLISHED and (
                stored["content_hash"] != self.content_hash or self.status != self.Status.PUBLISHED
            ):
                raise ImmutableDefinitionError("公開済みの様式定義は変更できません")
        super().save(*args, **kwargs)


class FormAssignment(models.Model):
    """Which published definition of a form a hospital (or every hospital, when hospital is empty) uses from when.
    Assignments are per hospital AND form (the definition's form): assigning one form never replaces another."""

    definition = models.ForeignKey(FormDefinition, on_delete=models.PROTECT, related_name="assignments")
    hospital = models.ForeignKey("accounts.Hospital", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="form_assignments")
    effective_from = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "様式の割当"
        ordering = ["-effective_from", "-id"]
