"""The form as hospital staff use it, in real Chromium with a Japanese locale: Japanese input (dates, フリガナ, postal
codes), the keyboard (Enter never submits), narrow screens, and screenshots of the main screens for docs/screenshots.
Each test states what a clerk does and what must come out in the database."""
from __future__ import annotations

from urllib.parse import urljoin

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.portal.browser import chromium, open_page, sign_in
from tests.portal.conftest import push_extract

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
PATIENT = "1100000002"  # 高橋　健, 78, EMR: SS-MIX2; one test row, a diagnosis-class suggestion


@pytest.fixture
def form_for(live_server, settings, hospital, published):
    """A fresh draft for PATIENT opened from the EMR button: returns (launch URL, the user's TOTP device)."""
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")

    def launch(user, patient=PATIENT, fmt="ss-mix2"):
        response = push_extract(Client(), patient, fmt)
        assert response.status_code == 201
        return response.json()["launch_url"], TOTPDevice.objects.get(user=user)

    return launch


def open_form(page, url, user, device):
    page.goto(url)
    sign_in(page, user, device)
    page.wait_for_url("**/notifications/*/")
    page.wait_for_load_state("networkidle")


def the_notification():
    from assist_portal.notifications.models import Notification

    return Notification.objects.get(patient_ref=PATIENT)


def save(page):
    page.click("button[name=action][value=save]")
    page.wait_for_selector("text=下書きを保存しました")


def test_a_wareki_date_typed_is_understood_as_typed_and_saved_as_iso(form_for, clerk):
    url, device = form_for(clerk)
    with chromium() as browser, open_page(browser) as page:
        open_form(page, url, clerk, device)
        box = page.locator("[name='clinical.estimated_infection_date']")
        box.press_sequentially("R3.1.10")
        understood = page.locator("#f-clinical-estimated_infection_date-understood")
        understood.filter(has_text="2021年1月10日（令和3年）").wait_for()
        assert box.input_value() == "R3.1.10"  # what was typed stays as typed
        # A date that cannot be one says why while typing (the same parser as the server).
        other = page.locator("[name='clinical.onset_date']")
        other.press_sequentially("2021/2/29")
        page.locator("#f-clinical-onset_date-understood").filter(has_text="2月は28日までです").wait_for()
        other.fill("")
        save(page)
        assert page.locator("#f-clinical-estimated_infection_date-understood").inner_text() == "2021年1月10日（令和3年）"
    assert the_notification().values["clinical.estimated_infection_date"] == "2021-01-10"


def test_hiragana_typed_into_furigana_becomes_katakana_on_the_page_and_in_the_database(form_for, clerk):
    url, device = form_for(clerk)
    with chromium() as browser, open_page(browser) as page:
        open_form(page, url, clerk, device)
        kana = page.locator("[name='patient.name_kana']")
        kana.fill("")
        kana.press_sequentially("やまだ　たろう")
        expect(kana).to_have_value("ヤマダ　タロウ")  # converted on the page, before any save
        half = page.locator("[name='patient.name']")  # not a kana item: kept exactly as typed
        half.fill("山田　太郎")
        save(page)
        assert kana.input_value() == "ヤマダ　タロウ"
    assert the_notification().values["patient.name_kana"] == "ヤマダ　タロウ"


def test_without_javascript_the_server_converts_the_same_way(form_for, clerk):
    url, device = form_for(clerk)
    with chromium() as browser, open_page(browser, java_script_enabled=False) as page:
        page.goto(url)
        sign_in(page, clerk, device)
        page.wait_for_selector("#notification-form")  # the launch answers with the form (no script: its URL stays)
        page.fill("[name='patient.name_kana']", "ﾔﾏﾀﾞ ﾀﾛｳ")
        page.fill("[name='clinical.onset_date']", "令和３年１月７日")
        save(page)
    values = the_notification().values
    assert values["patient.name_kana"] == "ヤマダ　タロウ" and values["clinical.onset_date"] == "2021-01-07"


def test_a_postal_code_fills_the_address_and_a_code_from_elsewhere_warns(form_for, clerk):
    url, device = form_for(clerk)
    with chromium() as browser, open_page(browser) as page:
        open_form(page, url, clerk, device)
        code, address = page.locator("[name='patient.postal_code']"), page.locator("[name='patient.address']")
        expect(code).to_have_value("460-0008")  # the EMR's 4600008, shown the one way
        code.fill("")
        address.fill("")
        code.press_sequentially("１０００００１")  # full-width, as an IME in full-width mode types it
        expect(address).to_have_value("東京都千代田区千代田")  # prefecture, city, town; the rest is left to type
        expect(code).to_have_value("100-0001")
        address.press_sequentially("１−１")
        address.fill("広島県広島市中区基町10-1")
        address.blur()  # leaving the field checks the draft with the server's rules: the warning under both items
        expect(page.locator("#f-patient-address-msgs")).to_contain_text("東京都の番号ですが、住所は広島県")
        expect(page.locator("#f-patient-postal_code-msgs")).to_contain_text("東京都の番号ですが、住所は広島県")
        save(page)
        assert "東京都の番号ですが" in page.locator("#f-patient-postal_code-msgs").inner_text()
        assert "東京都の番号ですが" in page.locator("#f-patient-address-msgs").inner_text()
    values = the_notification().values
    assert values["patient.postal_code"] == "100-0001" and values["patient.address"] == "広島県広島市中区基町10-1"


def test_a_form_you_can_scan(form_for, clerk):
    """Header, folded items that appear when they apply, spare test rows behind 「検査を追加」, progress and
    checks as a field is left — from the server's own rules."""
    url, device = form_for(clerk)
    with chromium() as browser, open_page(browser) as page:
        open_form(page, url, clerk, device)
        header = page.locator(".patient-header")
        for text in ("高橋　健", "タカハシ　ケン", "男", "1942年7月21日（昭和17年）", "78歳", "2021-03"):
            expect(header).to_contain_text(text)
        assert "必須です" not in page.inner_text("main")  # a fresh form: 未入力, said neutrally
        guardian, death = page.locator("[data-item='patient.guardian_name']"), page.locator("[data-item='clinical.death_date']")
        assert guardian.is_hidden() and death.is_hidden()
        page.select_option("[name='report.diagnosis_class']", "dead_confirmed")
        expect(death).to_be_visible()  # follows the answer at once
        page.select_option("[name='report.diagnosis_class']", "confirmed_patient")
        expect(death).to_be_hidden()
        birth = page.locator("[name='patient.birth_date']")
        birth.fill("")
        birth.press_sequentially("H27.4.1")
        birth.press("Tab")  # leaving the field: the server evaluates the draft; 5 years old → guardian applies
        expect(guardian).to_be_visible()
        expect(page.locator("input[name='patient.age']")).to_have_value("5")  # computed again from the dates
        rows = page.locator("[data-group='tests'] .tests-row")
        assert rows.nth(0).is_visible() and rows.nth(1).is_hidden()
        page.click("text=検査を追加")
        expect(rows.nth(1)).to_be_visible()
        assert page.evaluate("document.activeElement.name") == "tests-1-method"
        progress = page.locator("#progress")
        before = progress.inner_text()
        page.fill("[name='patient.occupation']", "会社員")
        page.locator("[name='patient.occupation']").blur()
        expect(progress).not_to_have_text(before)
        # A wrong phone number is said under its item when the field is left, before any save.
        page.fill("[name='patient.phone']", "123")
        page.locator("[name='patient.phone']").blur()
        expect(page.locator("#f-patient-phone-msgs")).to_contain_text("電話番号の形式が正しくありません")
        expect(page.locator("#f-patient-phone")).to_have_attribute("aria-invalid", "true")
        expect(progress).to_contain_text("エラー 1件")


def single_line_inputs(page) -> list[str]:
    return page.eval_on_selector_all(
        "#notification-form input:not([type=hidden]):not([type=radio]):not([type=checkbox]):not([type=date])",
        "els => els.filter(e => e.offsetParent !== null).map(e => e.name)")


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_enter_in_any_single_line_box_never_submits_nor_adopts_a_suggestion(form_for, physician, javascript):
    url, device = form_for(physician)
    posts: list[str] = []
    with chromium() as browser, open_page(browser, java_script_enabled=javascript) as page:
        if javascript:
            open_form(page, url, physician, device)
        else:
            page.goto(url)
            sign_in(page, physician, device)
            page.wait_for_selector("#notification-form")  # the launch answers with the form (its URL stays)
        shown_at = page.url
        form_url = urljoin(shown_at, page.get_attribute("#notification-form", "action"))  # where a submit posts
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url == form_url else None)
        assert page.locator("button[name=accept]").count() >= 1  # the EMR suggests a diagnosis class
        names = single_line_inputs(page)
        assert len(names) >= 15, names
        for name in names:
            page.locator(f"[name='{name}']").first.press("Enter")
        page.wait_for_timeout(300)
        assert posts == [] and page.url == shown_at
        assert page.locator("[name='report.diagnosis_class']").input_value() == ""  # not adopted
        assert page.locator("button[name=accept]").count() >= 1
    from assist_portal.audit.models import AuditEvent

    assert "report.diagnosis_class" not in the_notification().values
    assert not AuditEvent.objects.filter(action="notification.save").exists()


def test_keyboard_one_tab_per_date_arrows_in_choice_groups_nothing_mid_composition(form_for, clerk):
    url, device = form_for(clerk)
    with chromium() as browser, open_page(browser) as page:
        open_form(page, url, clerk, device)
        focused = lambda: page.evaluate("document.activeElement.name || document.activeElement.id")  # noqa: E731
        page.focus("[name='clinical.first_visit_date']")
        page.keyboard.press("Tab")  # the calendar button is for the mouse: one Tab stop per date
        assert focused() == "clinical.diagnosis_date"
        # A group of 15 symptom checkboxes is one Tab stop; arrow keys move inside, Space ticks.
        symptoms = page.eval_on_selector_all("[name='clinical.symptoms'][type=checkbox]", "els => els.map(e => e.value)")
        tab_stops = "els => els.filter(e => e.tabIndex === 0).length"
        assert len(symptoms) == 15 and page.eval_on_selector_all("[name='clinical.symptoms'][type=checkbox]", tab_stops) == 1
        page.focus(f"[name='clinical.symptoms'][value='{symptoms[0]}']")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.value") == symptoms[2]
        page.keyboard.press("Space")
        ticked = page.evaluate("document.activeElement.value")
        assert page.locator(f"[name='clinical.symptoms'][value='{ticked}']").is_checked()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") != "clinical.symptoms"
        # Radios: arrows move within the group (native), Tab leaves it.
        page.focus("[name='patient.sex'][value='male']")
        page.keyboard.press("ArrowRight")
        assert page.locator("[name='patient.sex'][value='female']").is_checked()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") != "patient.sex"
        # Mid-composition nothing is converted or checked; on commit it is.
        kana = page.locator("[name='patient.name_kana']")
        kana.fill("")
        kana.focus()
        page.wait_for_timeout(600)  # let the checks of what came before settle
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Input.imeSetComposition", {"text": "やまだ", "selectionStart": 3, "selectionEnd": 3})
        page.wait_for_timeout(700)
        assert sent == [] and kana.input_value() == "やまだ"
        cdp.send("Input.insertText", {"text": "やまだ"})  # the IME commits
        expect(kana).to_have_value("ヤマダ")
        assert any(u.endswith("/input/kana") for u in sent)


def test_the_terminal_may_remember_the_user_name_and_only_that(live_server, clerk):
    device = TOTPDevice.objects.get(user=clerk)
    with chromium() as browser, open_page(browser) as page:
        page.goto(live_server.url + "/accounts/login/")
        page.check("#remember-username")
        sign_in(page, clerk, device)
        page.wait_for_url("**/notifications/")
        page.click("text=ログアウト")
        page.goto(live_server.url + "/accounts/login/")
        assert page.input_value("#id_username") == clerk.username
        assert page.evaluate("document.activeElement.name") == "password"  # straight to the password
        assert page.input_value("#id_password") == "" and page.input_value("#id_otp_token") == ""
        stored = page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
        assert clerk.username in stored and "horse" not in stored  # never the password
        page.uncheck("#remember-username")
        page.fill("#id_password", "not-this-one-1")  # any submit with the box unticked forgets the name
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error")
        page.goto(live_server.url + "/accounts/login/")
        assert page.input_value("#id_username") == ""
