"""manage.py hospital create|deactivate|reactivate — onboarding from the data centre host (same services as the
/central/hospitals/ pages)."""
from django.core.management.base import BaseCommand, CommandError

from assist_portal.accounts.admin_services import (
    HOSPITAL_FIELDS,
    AccountError,
    hospital_create,
    hospital_set_active,
)
from assist_portal.accounts.models import Hospital
from assist_portal.central.services import hospital_assign
from assist_portal.formdefs.models import FormDefinition


class Command(BaseCommand):
    help = ("医療機関を登録（施設情報・管轄保健所・様式の割当）、利用停止、利用再開します。"
            "続けて connector_key create と user_create --role hospital_admin を実行してください。")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="医療機関を登録")
        create.add_argument("code", help="医療機関コード")
        for field, (label, _, required) in HOSPITAL_FIELDS.items():
            create.add_argument("--" + field.replace("_", "-"), required=required, default="", help=label)
        create.add_argument("--definition", type=int, default=None,
                            help="割り当てる公開済み様式定義のID（省略時は全医療機関共通の様式）")
        for action, text in (("deactivate", "利用を停止（利用者とキーは直ちに使えなくなります）"), ("reactivate", "利用を再開")):
            sub.add_parser(action, help=text).add_argument("code")

    def handle(self, *args, **o):
        if o["action"] == "create":
            definition = None
            if o["definition"] is not None:
                definition = FormDefinition.objects.filter(pk=o["definition"],
                                                           status=FormDefinition.Status.PUBLISHED).first()
                if definition is None:
                    raise CommandError(f"公開済みの様式定義 #{o['definition']} が見つかりません。")
            try:
                hospital = hospital_create(code=o["code"], **{f: o[f] for f in HOSPITAL_FIELDS})
            except AccountError as exc:
                raise CommandError(str(exc))
            if definition is not None:
                hospital_assign(hospital, definition)
            self.stdout.write(f"登録しました: {hospital}")
            return
        hospital = Hospital.objects.filter(code=o["code"]).first()
        if hospital is None:
            raise CommandError(f"医療機関 {o['code']} が見つかりません。")
        hospital_set_active(hospital, active=o["action"] == "reactivate")
        self.stdout.write(f"{hospital}: {'利用中' if hospital.is_active else '利用停止'}")
