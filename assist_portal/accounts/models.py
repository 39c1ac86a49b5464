from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models


class Hospital(models.Model):
    """A tenant. Its facility master fills the report.facility_* items."""

    code = models.CharField("医療機関コード", max_length=20, unique=True)
    name = models.CharField("名称", max_length=200)
    address = models.CharField("所在地", max_length=300)
    phone = models.CharField("電話番号", max_length=30)
    health_centre_code = models.CharField("管轄保健所コード", max_length=20, blank=True)
    health_centre_name = models.CharField("管轄保健所", max_length=100, blank=True)
    local_codes = models.JSONField("院内コード表", default=dict, blank=True)
    csv_profile = models.JSONField("DWH/CSV列対応プロファイル", default=dict, blank=True)
    # Off (the default): the connector sends only the notification items it extracted inside the hospital
    # (別紙1 ②). The hospital administrator may switch raw extracts on for a while, e.g. to debug a mapping.
    raw_push_enabled = models.BooleanField("抽出データそのものの受信を許可", default=False)
    # Off: its staff open nothing (accounts.decorators, User.is_hospital_staff) and its connector keys are refused.
    is_active = models.BooleanField("利用中", default=True)
    #: The form a notification opened from the EMR uses unless the user picks another; blank = the form of the
    #: hospital's earliest form assignment in effect (formdefs.selectors.hospital_default_form).
    default_form = models.CharField("既定の届出様式", max_length=40, blank=True, default="")
    #: Told (Django e-mail) when a delivery needs people: rejected, dead letter, not accepted in time. Optional.
    contact_email = models.EmailField("連絡先メールアドレス（送信の問題の通知）", blank=True, default="")

    class Meta:
        verbose_name = "医療機関"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def facility_master(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "address": self.address, "phone": self.phone,
                "health_centre_code": self.health_centre_code, "health_centre_name": self.health_centre_name}


class ConnectorKey(models.Model):
    """A hospital connector's API key: generated, shown once, stored as its SHA-256 only (the key is 256 random
    bits, so a fast hash is enough), named, with its last use; rotation gives the old key an end (`expires_at`)
    so both work during the overlap; revocation ends it at once (accounts.connector_keys)."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="connector_keys")
    name = models.CharField("名前", max_length=100)
    prefix = models.CharField("識別用の先頭文字", max_length=16, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField("作成", auto_now_add=True)
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField("最終使用", null=True, blank=True)
    expires_at = models.DateTimeField("有効期限", null=True, blank=True)
    revoked_at = models.DateTimeField("失効", null=True, blank=True)
    replaced_by = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="replaces")

    class Meta:
        verbose_name = "連携用APIキー"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.hospital.code} {self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()

    def is_usable(self, now=None) -> bool:
        from django.utils import timezone

        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class User(AbstractUser):
    class Role(models.TextChoices):
        PHYSICIAN = "physician", "医師"
        CLERK = "clerk", "事務"
        HOSPITAL_ADMIN = "hospital_admin", "医療機関管理者"
        CENTRAL_ADMIN = "central_admin", "中央管理者"

    role = models.CharField("役割", max_length=20, choices=Role.choices)
    hospital = models.ForeignKey(Hospital, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    display_name = models.CharField("氏名", max_length=100, blank=True)
    # Set for accounts whose password an administrator chose (creation, reset): the holder must replace it
    # before any other page opens (accounts.decorators.verified_required).
    must_change_password = models.BooleanField("パスワード変更が必要", default=False)

    class Meta:
        verbose_name = "利用者"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role="central_admin") | models.Q(hospital__isnull=False),
                name="hospital_staff_have_hospital",
            ),
            # A central admin never belongs to a hospital, so it can never hold an account of its staff.
            models.CheckConstraint(
                condition=~models.Q(role="central_admin") | models.Q(hospital__isnull=True),
                name="central_admin_has_no_hospital",
            ),
        ]

    @property
    def is_physician(self) -> bool:
        return self.role == self.Role.PHYSICIAN and self.hospital_is_active

    @property
    def is_central_admin(self) -> bool:
        return self.role == self.Role.CENTRAL_ADMIN

    @property
    def hospital_is_active(self) -> bool:
        """False for an account of a deactivated hospital: it gets nothing (pages, forms, launches)."""
        return self.hospital_id is not None and self.hospital.is_active

    @property
    def is_hospital_admin(self) -> bool:
        return self.role == self.Role.HOSPITAL_ADMIN and self.hospital_is_active

    @property
    def is_hospital_staff(self) -> bool:
        """Physicians and clerks of an active hospital: the only accounts that read patient values (never hospital
        or central admins)."""
        return self.role in PATIENT_READING_ROLES and self.hospital_is_active

    def __str__(self) -> str:
        return self.display_name or self.username


class SignInThrottle(models.Model):
    """Failed sign-ins of one source (accounts.throttle): a user name from one client address, or one client
    address whatever the names. Keys are HMACs: a password typed into the user-name field is never stored."""

    class Scope(models.TextChoices):
        ACCOUNT_ADDRESS = "account_address", "アカウント×接続元"
        ADDRESS = "address", "接続元"

    scope = models.CharField(max_length=20, choices=Scope.choices)
    key = models.CharField(max_length=64)
    # The account when the name exists (the administrators' page shows and lifts its locks); null otherwise.
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    failures = models.PositiveIntegerField(default=0)
    level = models.PositiveSmallIntegerField(default=0)  # locks so far: the next lasts base × 2^level (capped)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "ログイン失敗の記録"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="signin_throttle_unique_source")]


#: The roles whose accounts open notifications with patient values. Central admins can never create, reset or
#: unlock such an account (accounts.admin_services); hospital administrators manage exactly these.
PATIENT_READING_ROLES = (User.Role.PHYSICIAN, User.Role.CLERK)
