"""`browser`: the pre-filled form in Chromium on an old hospital terminal, modelled by 4× CPU throttling
(CDP `Emulation.setCPUThrottlingRate`), served by a real web server (gunicorn, one worker) from this run's database.

Per round, a fresh browser context (empty cache) signed in as a physician opens a freshly launched draft. Reported:
`form_tti_ms_throttled` — median time from navigation start until the first text input of the form accepts a
typed character (the keystroke is queued behind any script still running on the main thread, so long tasks count);
the bytes transferred (CDP `Network.loadingFinished.encodedDataLength`, all requests of the page); and the peak
resident memory of the web server (`rss_mb_web`, VmHWM of its processes).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .rss import tree_peak_rss_mb
from .stats import summary_ms

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
THROTTLE = 4
ROOT = Path(__file__).resolve().parent.parent
FIRST_INPUT = "main form input[type=text]:visible, main form textarea:visible"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """gunicorn with one sync worker on a free local port, in its own process group."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "assist_portal.wsgi", "-b", f"127.0.0.1:{self.port}", "--workers", "1",
             "--access-logfile", "-"],
            cwd=ROOT, env=dict(os.environ), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web server exited ({self.proc.returncode})")
            try:
                urllib.request.urlopen(self.url + "/accounts/login/", timeout=2).read()
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("web server not ready")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()


def _launched_form_path(world, k: int):
    """A new draft from a connector push + launch (through the test Client), as the path of its form page."""
    import json

    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from .world import signed_in_client

    site = world.sites[k % len(world.sites)]
    template = world.templates[k % len(world.templates)]
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        connector = Client(HTTP_AUTHORIZATION=f"Api-Key {site.api_key}")
        body = json.dumps({"patient_id": world.next_patient_ref("B"), "format": "fhir", "bundle": template.bundle},
                          ensure_ascii=False)
        pushed = connector.post("/api/v1/extracts", data=body, content_type="application/json")
        if pushed.status_code != 201:
            raise RuntimeError(f"push failed: {pushed.status_code}")
        browser = signed_in_client(site.physician)
        launched = browser.get("/" + pushed.json()["launch_url"].split("/", 3)[3])
        found = re.search(r'<link rel="canonical" href="(/[^"]+)">', launched.content.decode())
        if launched.status_code != 200 or found is None:  # the launch answers with the form itself
            raise RuntimeError(f"launch failed: {launched.status_code}")
    return found.group(1), browser.cookies


def run(env, world, *, rounds: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is not installed")
    server = WebServer(env.tmp / "web.log")
    tti, transferred, requests = [], [], []
    try:
        server.wait_ready()
        # The drafts first: Django's ORM refuses to run inside Playwright's (async) event loop.
        drafts = [_launched_form_path(world, i) for i in range(rounds + 1)]
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for i in range(rounds + 1):  # the first round warms the server up (imports, templates)
                    path, cookies = drafts[i]
                    context = chromium.new_context(locale="ja-JP")
                    context.add_cookies([{"name": c.key, "value": c.value, "url": server.url}
                                         for c in cookies.values()])
                    page = context.new_page()
                    cdp = context.new_cdp_session(page)
                    cdp.send("Network.enable")
                    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": THROTTLE})
                    sizes: list[int] = []
                    cdp.on("Network.loadingFinished", lambda e, sizes=sizes: sizes.append(int(e["encodedDataLength"])))
                    t0 = time.perf_counter()
                    page.goto(server.url + path, wait_until="commit")
                    field = page.locator(FIRST_INPUT).first
                    field.wait_for(state="visible", timeout=60_000)
                    field.focus()
                    page.keyboard.type("テ")
                    page.wait_for_function("el => el.value.includes('テ')", arg=field.element_handle(),
                                           timeout=60_000)
                    took = time.perf_counter() - t0
                    page.wait_for_load_state("load")
                    page.wait_for_timeout(300)  # late requests (fonts, scripts' fetches) are counted too
                    if i > 0:
                        tti.append(took)
                        transferred.append(sum(sizes))
                        requests.append(len(sizes))
                    context.close()
            finally:
                chromium.close()
        rss_web = tree_peak_rss_mb(server.proc.pid)
    finally:
        server.stop()
    s = summary_ms(tti)
    return {
        "name": "browser",
        "rounds": rounds,
        "cpu_throttling_rate": THROTTLE,
        "tti": s,
        "form_tti_ms_throttled": s["median_ms"],
        "transferred_bytes": int(sorted(transferred)[len(transferred) // 2]),
        "requests": int(sorted(requests)[len(requests) // 2]),
        "rss_mb_web": rss_web,
    }
