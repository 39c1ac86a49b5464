"""Print the current one-time codes of the demo users (demo installations only)."""
import time

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.central.management.commands.seed_demo import DEMO_USERS


def current_code(device: TOTPDevice) -> str:
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    return f"{code:0{device.digits}d}"


class Command(BaseCommand):
    help = "デモ利用者の現在のワンタイムパスワードを表示します。"

    def add_arguments(self, parser):
        parser.add_argument("--watch", action="store_true", help="30秒ごとに表示し続けます")
        parser.add_argument("--urls", action="store_true",
                            help="認証アプリに登録するための otpauth:// URL を表示します")

    def handle(self, *args, **options):
        names = [u for u, _, _ in DEMO_USERS]
        while True:
            devices = TOTPDevice.objects.filter(user__username__in=names, confirmed=True).select_related("user")
            if not devices:
                raise CommandError("デモ利用者が見つかりません。先に make run（seed_demo）を実行してください。")
            if options["urls"]:
                for d in devices:
                    self.stdout.write(f"{d.user.username}: {d.config_url}")
                return
            remaining = 30 - int(time.time()) % 30
            line = "  ".join(f"{d.user.username}: {current_code(d)}" for d in devices)
            self.stdout.write(f"{line}   （あと{remaining}秒有効）")
            if not options["watch"]:
                return
            time.sleep(remaining + 0.2)
