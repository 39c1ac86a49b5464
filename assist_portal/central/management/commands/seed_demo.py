"""Seed the demo: hospital H0001 with its facility master, local codes and DWH column profile (demo/), four users
with TOTP (physician, clerk, the hospital's administrator, a central admin), the COVID-19 form of the 2021-03
catalog."""
import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.accounts.connector_keys import connector_key_register
from assist_portal.accounts.models import Hospital, User
from assist_portal.central.services import definition_publish
from assist_portal.formdefs.models import FormDefinition
from assist_portal.formdefs.services import definition_import_builtin

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = [
    ("doctor", User.Role.PHYSICIAN, "山田　一郎"),
    ("clerk", User.Role.CLERK, "佐藤　花子"),
    ("hadmin", User.Role.HOSPITAL_ADMIN, "鈴木　管理"),
    ("admin", User.Role.CENTRAL_ADMIN, "中央　管理"),
]


def demo_connector_key() -> str:
    path = settings.VAR_DIR / "demo_connector_key"
    if not path.exists():
        path.write_text("demo-" + secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


class Command(BaseCommand):
    help = "デモ用の医療機関・利用者・様式定義を登録します（何度実行しても同じ状態になります）。"

    def add_arguments(self, parser):
        parser.add_argument("--catalog", "--form-version", dest="form_version", default="covid19-2021-03",
                            help="組み込みの項目カタログ（<様式>-<版>、vocabulary/catalogs/）")

    @transaction.atomic
    def handle(self, *args, **options):
        codes_path = settings.BASE_DIR / "demo" / "emr-samples" / "local-codes.json"
        local_codes = json.loads(codes_path.read_text(encoding="utf-8")) if codes_path.exists() else {}
        profile_path = settings.BASE_DIR / "demo" / "profiles" / "H0001.json"
        csv_profile = json.loads(profile_path.read_text(encoding="utf-8")) if profile_path.exists() else {}
        hospital, _ = Hospital.objects.update_or_create(
            code="H0001",
            defaults={"name": "さくら総合病院", "address": "東京都千代田区霞が関１−２−２",
                      "phone": "03-5253-1111", "local_codes": local_codes},
        )
        if not hospital.csv_profile and csv_profile:  # a profile a central admin edited stays as it is
            hospital.csv_profile = csv_profile
            hospital.save(update_fields=["csv_profile"])
        connector_key_register(hospital, name="デモ用コネクタ", secret=demo_connector_key())
        for username, role, display in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"role": role, "display_name": display,
                          "hospital": None if role == User.Role.CENTRAL_ADMIN else hospital},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            # Demo accounts keep the published demo password and a pre-enrolled device (make run prints its
            # codes), so they skip the first sign-in enrolment and the forced password change.
            if user.must_change_password:
                User.objects.filter(pk=user.pk).update(must_change_password=False)
            if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                TOTPDevice.objects.create(user=user, name="demo", confirmed=True)
        if not FormDefinition.objects.filter(status=FormDefinition.Status.PUBLISHED).exists():
            draft = definition_import_builtin(options["form_version"])
            definition_publish(draft)
        self.stdout.write(self.style.SUCCESS("デモデータを登録しました。"))
