"""The whole thin path in real headless Chromium: connector push → launch URL → sign-in with TOTP → pre-filled
form → clerk saves a draft → physician confirms → Celery worker → hersys_client over HTTPS → sandbox → receipt."""
import contextlib
import json
import os
import shutil

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import SHARED
from tests.portal.conftest import PASSWORD, current_totp, next_totp, push_extract

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
CHROMIUM = "/usr/bin/chromium"
PATIENT = "1100000002"


@contextlib.contextmanager
def chromium():
    """Debian's Chromium driven by Playwright. No ORM calls may happen inside: Playwright's sync API runs an
    event loop in this thread, and Django would open a second, never-closed connection there."""
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not executable:
        pytest.fail("Debian chromium is not installed (.ci/run installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                    "--no-first-run", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync"])
        try:
            yield b
        finally:
            b.close()


def sign_in(page, user, device):
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", current_totp(device))
    page.click("button[type=submit]")


def test_whole_flow_in_chromium(live_server, settings, hospital, physician, clerk, published,
                                celery_worker_factory, sandbox):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.OTP_RECHECK_MINUTES = 0  # the sign-in's second factor is already too old for the final click
    key = json.loads((SHARED / "emr-samples" / "answer-key.json").read_text(encoding="utf-8"))[PATIENT]
    published("2021-03")
    celery_worker_factory()

    # 1. The hospital connector pushes the extract over HTTP and gets a one-time launch URL.
    from django.test import Client

    pushed = push_extract(Client(), PATIENT, "ss-mix2")
    assert pushed.status_code == 201
    launch_url = pushed.json()["launch_url"]
    assert launch_url.startswith(live_server.url)
    devices = {u.username: TOTPDevice.objects.get(user=u) for u in (clerk, physician)}
    with chromium() as browser:
        receipt = drive_browser(browser, live_server.url, launch_url, clerk, physician, devices, key)

    # 4. The sandbox received exactly one notification, with the right values.
    received = sandbox.received()["notifications"]
    assert len(received) == 1
    assert received[0]["receipt_id"] == receipt
    bundle = received[0]["revisions"][0]["bundle"]
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["birthDate"] == key["patient.birth_date"]
    names = json.dumps(patient["name"], ensure_ascii=False)
    assert key["patient.name"].split("\u3000")[0] in names
    qr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    answers = json.dumps(qr, ensure_ascii=False)
    assert "会社員" in answers and "confirmed_patient" in answers and "韓国" in answers


def drive_browser(browser, base_url, launch_url, clerk, physician, devices, key) -> str:
    # 2. The clerk opens it from the EMR button, signs in with TOTP, sees the pre-filled form, saves a draft.
    ctx = browser.new_context(locale="ja-JP")
    page = ctx.new_page()
    page.goto(launch_url)
    assert "/accounts/login/" in page.url
    sign_in(page, clerk, devices[clerk.username])
    page.wait_for_url("**/notifications/*/")
    assert page.input_value("[name='patient.name']") == key["patient.name"]
    # The launch answered with the form itself (one round trip); the address bar holds the form's own URL, so a
    # reload opens the form again, never the spent one-time launch URL.
    assert "/launch/" not in page.url
    page.reload()
    assert page.input_value("[name='patient.name']") == key["patient.name"]
    assert page.input_value("[name='patient.birth_date']") == key["patient.birth_date"]
    name_row = page.locator("[data-item='patient.name']")
    assert "電子カルテ" in name_row.inner_text()
    assert "医療機関マスタ" in page.locator("[data-item='report.facility_name']").inner_text()
    page.fill("[name='patient.occupation']", "会社員")
    # Conditional items follow the answers live (progressive enhancement; the server applies the same rule).
    country = page.locator("[data-item='infection.country']")
    assert country.is_hidden()
    page.check("[name='infection.region'][value=overseas]")
    assert country.is_visible()
    page.fill("[name='infection.country']", "韓国")
    page.click("button[name=action][value=save]")
    page.wait_for_selector("text=下書きを保存しました")
    assert page.input_value("[name='patient.occupation']") == "会社員"
    # ... and hands it to the physician with a note (医師確認待ち).
    page.select_option("#handoff-physician", label=str(physician))
    page.fill("#handoff-note-input", "職業と渡航歴を入力しました。ICU等をご確認ください")
    page.click("button[name=action][value=handoff]")
    page.wait_for_selector("text=医師確認待ちにしました")
    page.click("text=ログアウト")
    ctx.close()

    # 3. The physician signs in and lands on 医師確認待ち, finds the case there, opens it and confirms on the review
    #    step: the empty medical items need an explicit answer; the second factor is asked again (the window has
    #    passed: OTP_RECHECK_MINUTES is 0 here).
    ctx = browser.new_context(locale="ja-JP")
    page = ctx.new_page()
    page.goto(base_url + "/")
    sign_in(page, physician, devices[physician.username])
    page.wait_for_url("**/notifications/")
    assert page.get_attribute(".state-tabs a[data-state=review]", "aria-current") == "page"
    row = page.locator("tr[data-state=review]")
    assert row.count() == 1 and key["patient.name"] in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_url("**/notifications/*/")
    assert "ICU等をご確認ください" in page.inner_text("#handoff-note")
    page.select_option("[name='report.diagnosis_class']", "confirmed_patient")
    page.click("button[name=action][value=confirm]")
    page.wait_for_url("**/review/")
    assert "1942年7月21日" in page.inner_text("main")  # as a person reads it
    icu = page.locator("fieldset.review-answer#answer-care\\.icu")
    assert icu.count() == 1
    page.click("#final-confirm")  # nothing answered yet: refused, with the reason
    page.wait_for_selector("#review-errors")
    assert "「不明」または「該当なし」" in page.inner_text("#review-errors")
    for fieldset in page.locator("fieldset.review-answer").all():
        fieldset.locator("input[value=unknown]").check()
    if page.locator("[name=change_physician]").count():
        page.check("[name=change_physician]")
    page.fill("#otp-token", next_totp(devices[physician.username]))
    page.click("#final-confirm")
    page.wait_for_url("**/status/")
    page.wait_for_selector("#status-label:has-text('受理')", timeout=60000)
    receipt = page.inner_text("#receipt-id")
    assert receipt.startswith("HS-")
    page.goto(base_url + "/notifications/?state=accepted")
    assert receipt in page.inner_text("tr[data-state=accepted]")
    ctx.close()
    return receipt


def test_second_form_in_chromium(live_server, settings, hospital, physician, published, celery_worker_factory,
                                 sandbox):
    """The same path for the second form: H0001 uses COVID-19 and 腸管出血性大腸菌感染症; the EMR launch asks which,
    the physician picks EHEC, fills the diagnosis methods (conditional items follow live), confirms: 受理."""
    from django.test import Client

    from assist_portal.formdefs.services import definition_import_builtin, definition_publish

    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    definition_publish(definition_import_builtin("ehec-2023-05"), hospitals=[hospital])
    celery_worker_factory()
    pushed = push_extract(Client(), PATIENT, "fhir")
    assert pushed.status_code == 201
    device = TOTPDevice.objects.get(user=physician)
    with chromium() as browser:
        receipt = drive_second_form(browser, pushed.json()["launch_url"], physician, device)

    received = sandbox.received(include_bundles=True)["notifications"]
    assert len(received) == 1 and received[0]["receipt_id"] == receipt
    bundle = received[0]["revisions"][0]["bundle"]
    qr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    assert qr["questionnaire"].endswith("|2023-05")
    answers = json.dumps(qr, ensure_ascii=False)
    assert "O157" in answers and "isolation_vt" in answers and "toxin_production" in answers
    assert "nasopharyngeal_swab" not in answers  # the extract's COVID test never entered the EHEC form


def drive_second_form(browser, launch_url, physician, device) -> str:
    ctx = browser.new_context(locale="ja-JP")
    page = ctx.new_page()
    page.goto(launch_url)
    assert "/accounts/login/" in page.url
    sign_in(page, physician, device)
    # The launch page offers 「届出様式」 with the hospital's default (COVID-19) preselected.
    page.wait_for_selector("#launch-choose")
    assert page.is_checked("#form-covid19") and not page.is_checked("#form-ehec")
    page.check("#form-ehec")
    page.click("#launch-open")
    page.wait_for_url("**/notifications/*/")
    assert "腸管出血性大腸菌感染症 発生届" in page.inner_text("#form-heading")
    assert page.input_value("[name='patient.name']") == "高橋　健"
    assert page.locator("[name='tests-0-method']").count() == 0
    page.check("[name='report.diagnosis_class'][value=confirmed_patient]")
    page.fill("[name='patient.occupation']", "無職")
    for symptom in ("abdominal_pain", "bloody_stool"):
        page.check(f"[name='clinical.symptoms'][value={symptom}]")
    serogroup = page.locator("[data-item='ehec.o_serogroup']")
    assert serogroup.is_hidden()
    page.check("[name='ehec.diagnosis_methods'][value=isolation_vt]")
    assert serogroup.is_visible()  # the isolate's details appear with the method
    page.check("[name='ehec.vt_confirmation'][value=toxin_production]")
    page.check("[name='ehec.specimen'][value=stool]")
    page.select_option("[name='ehec.o_serogroup']", "O157")
    page.check("[name='ehec.verotoxin'][value=vt2]")
    page.fill("[name='clinical.onset_date']", "2021-01-06")
    page.fill("[name='clinical.diagnosis_date']", "2021-01-09")
    page.click("button[name=action][value=confirm]")
    confirm_on_review(page)
    page.wait_for_url("**/status/")
    page.wait_for_selector("#status-label:has-text('受理')", timeout=60000)
    receipt = page.inner_text("#receipt-id")
    assert receipt.startswith("HS-")
    ctx.close()
    return receipt


def confirm_on_review(page) -> None:
    """On the review step: answer every empty medical item with 不明, take over as the form's physician, confirm."""
    page.wait_for_url("**/review/")
    for fieldset in page.locator("fieldset.review-answer").all():
        fieldset.locator("input[value=unknown]").check()
    if page.locator("[name=change_physician]").count():
        page.check("[name=change_physician]")
    page.click("#final-confirm")
