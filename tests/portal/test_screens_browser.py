"""Every screen in real Chromium: no sideways scrolling from 360 px up, axe-core finds no critical or serious
accessibility violation, and the main screens are photographed for docs/screenshots at 1280 px and 375 px.

axe-core comes from npm (package.json / package-lock.json; `make test` runs `npm ci`) and is injected into each page
with the page's CSP bypassed for the test only (the product's CSP allows no inline script)."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import ROOT
from tests.portal.browser import DESKTOP, PHONE, chromium, no_sideways_scroll, open_page, screenshot, sign_in
from tests.portal.conftest import PASSWORD, push_extract

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PATIENT = "1100000002"
NARROW = (PHONE, {"width": 360, "height": 780})
#: The main screens photographed for docs/screenshots (the others are checked, not photographed).
PHOTOGRAPHED = {"login", "keys", "login-key", "hospital-effort", "worklist", "form", "form-errors", "review", "status",
                "print", "central-definitions", "central-item"}


def axe_source() -> str:
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make install` (npm ci) — make test does it")
    return AXE.read_text(encoding="utf-8")


def axe_problems(page, source: str) -> list[dict]:
    """Critical and serious violations of WCAG 2.1 A/AA and best practice on the page as shown."""
    page.add_script_tag(content=source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}, resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("critical", "serious")]


class Screens:
    """Visits screens at each width, collecting what is wrong instead of stopping at the first page."""

    def __init__(self, browser, base_url: str) -> None:
        self.browser, self.base_url, self.axe = browser, base_url, axe_source()
        self.problems: dict[str, list] = {}
        self.scroll: dict[str, tuple[int, int]] = {}

    def check(self, page, name: str) -> None:
        page.wait_for_load_state("networkidle")
        width = page.viewport_size["width"]
        if width == DESKTOP["width"]:
            found = axe_problems(page, self.axe)
            if found:
                self.problems[name] = found
        scroll = no_sideways_scroll(page)
        if scroll[0] > scroll[1]:
            self.scroll[f"{name}@{width}"] = scroll
        if name in PHOTOGRAPHED and width in (DESKTOP["width"], PHONE["width"]):
            screenshot(page, name)

    def each_width(self, page, name: str, widths=(DESKTOP, *NARROW)) -> None:
        for viewport in widths:
            page.set_viewport_size(viewport)
            self.check(page, name)
        page.set_viewport_size(DESKTOP)

    def visit(self, page, name: str, path: str) -> None:
        page.goto(self.base_url + path)
        self.each_width(page, name)

    def assert_clean(self) -> None:
        assert not self.scroll and not self.problems, (
            f"sideways scrolling (scrollWidth, innerWidth): {self.scroll}\n"
            "axe-core: " + json.dumps(self.problems, ensure_ascii=False, indent=1))


@pytest.fixture
def staff_setup(live_server, settings, hospital, clerk, physician, published):
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    url = push_extract(Client(), PATIENT, "ss-mix2").json()["launch_url"]
    return url, {u.username: TOTPDevice.objects.get(user=u) for u in (clerk, physician)}


def test_hospital_screens_fit_every_width_and_pass_axe(live_server, staff_setup, clerk, physician):
    launch_url, devices = staff_setup
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as page:
            page.goto(launch_url)
            screens.each_width(page, "login")
            sign_in(page, clerk, devices[clerk.username])
            page.wait_for_url("**/notifications/*/")
            form_path = page.url.removeprefix(live_server.url)
            screens.each_width(page, "form")
            page.click("#toggle-sources")  # the sources' detail, on demand
            screens.each_width(page, "form-sources", widths=(DESKTOP, PHONE))
            screens.visit(page, "worklist", "/notifications/")
            screens.visit(page, "status", form_path + "status/")
            screens.visit(page, "print", form_path + "print/")
            screens.visit(page, "password", "/accounts/password/")
        with open_page(browser, bypass_csp=True) as page:
            page.goto(live_server.url + form_path)
            sign_in(page, physician, devices[physician.username])
            page.wait_for_url("**/notifications/*/")
            page.fill("[name='patient.phone']", "123")
            page.fill("[name='clinical.onset_date']", "R3.1.20")  # after the diagnosis date
            page.click("button[name=action][value=confirm]")
            page.wait_for_selector("#error-summary")
            assert page.evaluate("document.activeElement.id") == "error-summary"  # focus lands on the summary
            screens.each_width(page, "form-errors")
            # fixed: the review step of the confirmation (what will be sent, the answers it needs)
            page.fill("[name='patient.phone']", "03-1234-5678")
            page.fill("[name='clinical.onset_date']", "")
            page.select_option("[name='report.diagnosis_class']", "confirmed_patient")
            page.click("button[name=action][value=confirm]")
            page.wait_for_url("**/review/")
            screens.each_width(page, "review")
            screens.visit(page, "worklist-review", "/notifications/?state=review")
    screens.assert_clean()


def test_sign_in_and_first_enrolment_screens(live_server, settings, hospital):
    from assist_portal.accounts.models import User

    User.objects.create_user(username="new_clerk", password=PASSWORD, role="clerk", hospital=hospital,
                             display_name="新人　事務")
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as page:
            page.goto(live_server.url + "/accounts/login/")
            page.fill("#id_username", "nobody")
            page.fill("#id_password", "wrong-password-1")
            page.click("button[type=submit]")
            screens.each_width(page, "login-error")
            page.fill("#id_username", "new_clerk")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/accounts/enrol/")
            screens.each_width(page, "enrol")
    screens.assert_clean()


def test_central_screens_fit_every_width_and_pass_axe(live_server, settings, hospital, central_admin, published):
    from assist_portal.formdefs.services import definition_import_builtin

    published("2021-03")
    draft = definition_import_builtin("2022-09")
    device = TOTPDevice.objects.get(user=central_admin)
    pages = {
        "central-definitions": "/central/definitions/",
        "central-definition": f"/central/definitions/{draft.pk}/",
        "central-preview": f"/central/definitions/{draft.pk}/preview/",
        "central-item": f"/central/definitions/{draft.pk}/items/clinical.death_date/",
        "central-item-add": f"/central/definitions/{draft.pk}/items/add/",
        "central-users": "/central/users/",
        "central-hospitals": "/central/hospitals/",
        "central-mapping": f"/central/hospitals/{hospital.pk}/mapping/",
        "central-deliveries": "/central/deliveries/",
        "central-effort": "/central/effort/",
    }
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as page:
            page.goto(live_server.url + "/central/definitions/")
            sign_in(page, central_admin, device)
            page.wait_for_url("**/central/definitions/")
            for name, path in pages.items():
                screens.visit(page, name, path)
    screens.assert_clean()


def test_security_key_screens(live_server, settings, clerk, login):
    """The keys page (with a key) and the sign-in's key step (after a failed exchange, showing its error)."""
    from tests.portal.soft_authenticator import SoftKey

    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    http = login(Client(), clerk)
    begin = http.post("/accounts/keys/register/begin/", data=json.dumps({"name": "職員証のキー"}),
                      content_type="application/json").json()
    done = http.post("/accounts/keys/register/complete/", content_type="application/json",
                     data=json.dumps(SoftKey(origin=live_server.url).create(begin)))
    assert done.status_code == 200
    device = TOTPDevice.objects.get(user=clerk)
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as page:
            page.goto(live_server.url + "/accounts/keys/")
            sign_in(page, clerk, device)
            page.wait_for_url("**/accounts/keys/")
            assert "職員証のキー" in page.inner_text("#key-list")
            screens.each_width(page, "keys")
            page.click("text=ログアウト")
            page.route("**/accounts/login/key/begin/", lambda route: route.abort())  # the exchange fails once
            page.fill("#id_username", clerk.username)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/accounts/login/key/")
            page.wait_for_selector("#key-error:has-text('通信に失敗しました')")
            screens.each_width(page, "login-key")
    screens.assert_clean()


def test_hospital_admin_screens_fit_every_width_and_pass_axe(live_server, hospital, clerk, physician, hospital_admin,
                                                             published, login):
    from tests.portal.test_effort_report import _confirmed

    published("2021-03")
    _confirmed(Client(), login, push_extract, clerk, physician, "2200000007", adopt=True)  # a row in the report
    device = TOTPDevice.objects.get(user=hospital_admin)
    pages = {"hospital-staff": "/hospital/staff/", "hospital-settings": "/hospital/settings/",
             "hospital-effort": "/hospital/effort/"}
    with chromium() as browser:
        screens = Screens(browser, live_server.url)
        with open_page(browser, bypass_csp=True) as page:
            page.goto(live_server.url + "/hospital/effort/")
            sign_in(page, hospital_admin, device)
            page.wait_for_url("**/hospital/effort/")
            assert page.locator("#effort-table tbody tr").count() == 1
            for name, path in pages.items():
                screens.visit(page, name, path)
    screens.assert_clean()
