"""Helpers for the browser tests: one clerk or physician in real Chromium on the live server, signed in with TOTP.

No ORM call may happen while Playwright runs (its sync API runs an event loop in this thread): set data up before
`chromium()` and read the database after it."""
from __future__ import annotations

import contextlib
from pathlib import Path

from tests.conftest import ROOT
from tests.portal.test_e2e_browser import chromium, sign_in

SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}

__all__ = ["DESKTOP", "PHONE", "SCREENSHOTS", "chromium", "no_sideways_scroll", "open_page", "screenshot", "sign_in"]


@contextlib.contextmanager
def open_page(browser, viewport=DESKTOP, **options):
    ctx = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=viewport, **options)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def screenshot(page, name: str) -> Path:
    """docs/screenshots/<name>-<width>.png, the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_sideways_scroll(page) -> tuple[int, int]:
    """(scrollWidth, innerWidth) of the page: equal when nothing sticks out sideways."""
    return page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
