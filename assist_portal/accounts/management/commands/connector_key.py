"""manage.py connector_key create|rotate|revoke|list — a hospital's connector keys from the data centre host."""
import os

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from assist_portal.accounts.connector_keys import (
    ConnectorKeyError,
    connector_key_create,
    connector_key_revoke,
    connector_key_rotate,
    keys_for_hospital,
)
from assist_portal.accounts.models import Hospital


class Command(BaseCommand):
    help = ("医療機関の連携用APIキーを作成・更新（重複期間つき）・失効・一覧表示します。"
            "新しいキーは一度だけ表示されます（--out で鍵ファイルに保存）。")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="キーを作成")
        create.add_argument("hospital", help="医療機関コード")
        create.add_argument("--name", required=True, help="キーの名前（どの機器が使うか）")
        create.add_argument("--out", help="キーを書き出す鍵ファイル（権限600）。省略時は画面に表示")
        rotate = sub.add_parser("rotate", help="キーを更新（古いキーは重複期間の終わりまで有効）")
        rotate.add_argument("hospital")
        rotate.add_argument("key_id", type=int)
        rotate.add_argument("--overlap-hours", type=float, default=None)
        rotate.add_argument("--out")
        revoke = sub.add_parser("revoke", help="キーを直ちに失効")
        revoke.add_argument("hospital")
        revoke.add_argument("key_id", type=int)
        listing = sub.add_parser("list", help="キーの一覧（キー自体は表示しません）")
        listing.add_argument("hospital")

    def _hospital(self, code) -> Hospital:
        hospital = Hospital.objects.filter(code=code).first()
        if hospital is None:
            raise CommandError(f"医療機関 {code} が見つかりません。")
        return hospital

    def _show(self, secret: str, out: str | None) -> None:
        if out:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secret + "\n")
            self.stdout.write(f"キーを {out} に保存しました（この後は表示できません）。")
        else:
            self.stdout.write(f"キー（一度だけ表示します）: {secret}")

    def handle(self, *args, **o):
        hospital = self._hospital(o["hospital"])
        try:
            if o["action"] == "create":
                row, secret = connector_key_create(hospital, name=o["name"])
                self.stdout.write(f"作成しました: #{row.pk} {row.name}（{row.prefix}…）")
                self._show(secret, o["out"])
            elif o["action"] == "rotate":
                key = hospital.connector_keys.filter(pk=o["key_id"]).first()
                if key is None:
                    raise CommandError(f"キー #{o['key_id']} は {hospital.code} にありません。")
                row, secret = connector_key_rotate(key, overlap_hours=o["overlap_hours"])
                key.refresh_from_db()
                self.stdout.write(f"更新しました: 新しいキー #{row.pk}（{row.prefix}…）。古いキー #{key.pk} は "
                                  f"{timezone.localtime(key.expires_at):%Y-%m-%d %H:%M} まで使えます。")
                self._show(secret, o["out"])
            elif o["action"] == "revoke":
                key = hospital.connector_keys.filter(pk=o["key_id"]).first()
                if key is None:
                    raise CommandError(f"キー #{o['key_id']} は {hospital.code} にありません。")
                connector_key_revoke(key)
                self.stdout.write(f"失効させました: #{key.pk} {key.name}")
            else:
                now = timezone.now()
                for k in keys_for_hospital(hospital):
                    state = ("失効" if k.revoked_at else "期限切れ" if k.expires_at and k.expires_at <= now
                             else f"{timezone.localtime(k.expires_at):%Y-%m-%d %H:%M} まで" if k.expires_at else "有効")
                    used = f"{timezone.localtime(k.last_used_at):%Y-%m-%d %H:%M}" if k.last_used_at else "未使用"
                    self.stdout.write(f"#{k.pk}\t{k.prefix or '（移行）'}…\t{k.name}\t最終使用 {used}\t{state}")
        except ConnectorKeyError as exc:
            raise CommandError(str(exc))
