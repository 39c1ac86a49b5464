"""`make run`: the whole product on the embedded default, in the foreground. Ctrl-C stops everything.

Starts the HER-SYS sandbox (HTTPS, mutual TLS), a Celery worker for the `hersys` queue (the VPN side), a worker
for the `default` queue, Celery beat (the delivery sweeper) and the web server, after migrating and seeding the
demo hospital. Environment variables override every default (see README).

The children are supervised (scripts/supervise.py): one that crashes is restarted with a backoff while the others,
the web server included, keep running; each runs in its own process group, so stopping never leaves orphans.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from supervise import Supervisor

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("HERSYS_HOST", "127.0.0.1")
PORT = int(os.environ.get("HERSYS_PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("HERSYS_SANDBOX_PORT", "8443"))


def main() -> int:
    env = dict(os.environ)
    env.setdefault("HERSYS_DEMO_MODE", "1")
    env.setdefault("PUBLIC_BASE_URL", f"http://{HOST}:{PORT}")
    env.setdefault("HERSYS_API_URL", f"https://127.0.0.1:{SANDBOX_PORT}")
    env.setdefault("DJANGO_SETTINGS_MODULE", "assist_portal.settings")
    var = Path(env.get("HERSYS_VAR_DIR", ROOT / "var"))
    var.mkdir(parents=True, exist_ok=True)

    def manage(*args: str) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)

    _ensure_pdf_font(env)
    print("== データベースを準備しています（migrate）...", flush=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    subprocess.run([PY, "-m", "hersys_client.devpki", str(var / "pki")], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)

    celery = [PY, "-m", "celery", "--quiet", "-A", "assist_portal.celery"]
    specs = [
        ("sandbox", [PY, "-m", "hersys_client.sandbox", "--host", "127.0.0.1", "--port", str(SANDBOX_PORT),
                     "--pki-dir", str(var / "pki"), "--db", str(var / "sandbox.sqlite3")]),
        ("worker-hersys", celery + ["worker", "-Q", "hersys", "-n", "hersys@%h", "-c", "2", "-l", "WARNING"]),
        ("worker-default", celery + ["worker", "-Q", "default", "-n", "default@%h", "-c", "1", "-l", "WARNING"]),
        ("beat", celery + ["beat", "-l", "WARNING", "-s", str(var / "celerybeat-schedule")]),
        ("web", [PY, "-m", "gunicorn", "assist_portal.wsgi", "-b", f"{HOST}:{PORT}", "--workers", "2",
                 "--threads", "4", "--log-level", "warning"]),
    ]
    supervisor = Supervisor(specs, cwd=ROOT, env=env)

    def say_stopping():
        print("\n== 停止しています...", flush=True)

    supervisor.install_signal_handlers(on_stop=say_stopping)
    supervisor.start_all()
    if not _wait_http(f"http://{HOST}:{PORT}/accounts/login/", 60, on_tick=supervisor.poll,
                      give_up=lambda: supervisor.stopping):
        if supervisor.stopping:  # Ctrl-C while starting
            return 0
        print("Webサーバーが起動しませんでした。上のログを確認してください。", file=sys.stderr)
        say_stopping()
        supervisor.stop()
        return 1
    subprocess.run([PY, "manage.py", "demo_otp"], cwd=ROOT, env=env, capture_output=False)
    base = f"http://{HOST}:{PORT}"
    launch_lines = _demo_launch_urls(base, var, env)
    print(f"""
==================================================================
 HER-SYS 登録補助画面（デモ）が起動しました
------------------------------------------------------------------
 1. ブラウザで開く:   {base}/accounts/login/
 2. ログイン:         doctor（医師） / clerk（事務） / hadmin（医療機関管理者） / admin（中央管理者）
                      パスワードはいずれも demo-pass-2026
 3. ワンタイムパスワード: 上の行のとおり。最新の値は別の端末で
                      make otp   （表示し続けるなら make otp-watch）
 4. 電子カルテからの起動（デモ）: {base}/demo/
 5. 届出一覧:         {base}/notifications/
 電子カルテのボタンが開く起動URL（1回限り・{int(env.get("LAUNCH_TOKEN_TTL_SECONDS", "600")) // 60}分有効。以後は 4. から）:
{launch_lines}
 中央管理（admin）:   {base}/central/definitions/  /  {base}/central/deliveries/
 HER-SYS サンドボックス: https://127.0.0.1:{SANDBOX_PORT}  受信一覧 /_sandbox/received
 連携API（病院コネクタ）: POST {base}/api/v1/extracts （APIキー: var/demo_connector_key）
 停止: Ctrl-C
==================================================================
""", flush=True)
    supervisor.run()  # until Ctrl-C / SIGTERM; crashed children are restarted meanwhile
    return 0


DEMO_LAUNCH_PATIENTS = ("1100000002", "9400000001", "2200000007")


def _ensure_pdf_font(env: dict) -> None:
    """The paper-form PDF embeds a Japanese TrueType font (Debian fonts-ipaexfont-gothic): installed here when it is
    missing and apt can run (root or sudo), otherwise a warning — everything else works without it."""
    font = Path(env.get("PDF_FONT_PATH", "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"))
    if font.exists():
        return
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is not None and shutil.which("apt-get"):
        print("== PDF用の日本語フォント（fonts-ipaexfont-gothic）を導入しています...", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(sudo + ["apt-get", "update", "-q"], check=False, **quiet)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "fonts-ipaexfont-gothic"], check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, **quiet)
    if not font.exists():
        print(f"注意: PDF用の日本語フォント {font} がありません。紙の様式のPDFは作れません（印刷画面は使えます）。"
              "fonts-ipaexfont-gothic を導入するか PDF_FONT_PATH を設定してください。", flush=True)


def _demo_launch_urls(base: str, var: Path, env: dict) -> str:
    """Push a few demo patients through the real connector API, as the hospital's connector would."""
    key = (var / "demo_connector_key").read_text().strip()
    lines = []
    for pid in DEMO_LAUNCH_PATIENTS:
        folder = ROOT / "demo" / "emr-samples" / "ss-mix2" / pid[:3] / pid[3:6] / pid
        r = subprocess.run([PY, "-m", "connector", "--url", base, "--api-key", key, "push", "--format", "ss-mix2",
                            str(folder)], cwd=ROOT, env=env, capture_output=True, text=True)
        lines.append(f"   患者 {pid}: {r.stdout.strip() if r.returncode == 0 else '（作成できませんでした）'}")
    return "\n".join(lines)


def _wait_http(url: str, seconds: float, on_tick=None, give_up=None) -> bool:
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        if give_up is not None and give_up():
            return False
        if on_tick is not None:
            on_tick()
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return True
        except Exception:
            time.sleep(0.5)
    return False


if __name__ == "__main__":
    sys.exit(main())
