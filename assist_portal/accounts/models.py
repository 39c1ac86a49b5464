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
    api_key_hash = models.CharField(max_length=64, blank=True, db_index=True)
    local_codes = models.JSONField("院内コード表", default=dict, blank=True)
    csv_profile = models.JSONField("DWH/CSV列対応プロファイル", default=dict, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "医療機関"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @staticmethod
    def hash_api_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def facility_master(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "address": self.address, "phone": self.phone}


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
        return self.role == self.Role.PHYSICIAN

    @property
    def is_central_admin(self) -> bool:
        return self.role == self.Role.CENTRAL_ADMIN

    @property
    def is_hospital_admin(self) -> bool:
        return self.role == self.Role.HOSPITAL_ADMIN and self.hospital_id is not None

    @property
    def is_hospital_staff(self) -> bool:
        """Physicians and clerks: the only accounts that read patient values (never hospital or central admins)."""
        return self.role in PATIENT_READING_ROLES and self.hospital_id is not None

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
