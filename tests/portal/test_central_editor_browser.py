"""The central admin's structured editor in real Chromium: a display condition and a conditional rule built from
item / operator / value, read back in Japanese, saved as the JSON the server validates (the JSON box stays as the
advanced option)."""
from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.portal.browser import chromium, open_page, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_a_display_condition_and_a_rule_without_writing_json(live_server, central_admin, published):
    from assist_portal.formdefs.models import FormDefinition
    from assist_portal.formdefs.services import definition_import_builtin

    published("2021-03")
    draft = definition_import_builtin("2022-09")
    device = TOTPDevice.objects.get(user=central_admin)
    base = live_server.url + f"/central/definitions/{draft.pk}/"
    with chromium() as browser, open_page(browser) as page:
        page.goto(base)
        sign_in(page, central_admin, device)
        page.wait_for_url("**/definitions/*/")
        rules = page.locator("#rules-in-words")
        expect(rules).to_contain_text("「発病年月日」 ≦ 「診断（検案）年月日」 ≦ 「報告年月日」（同じ日も可）")
        expect(rules).to_contain_text("「入院の有無」が「有」のとき、「発生届の対象（届出対象区分）」に「入院を要する者」を候補として示す")

        page.goto(base + "items/clinical.symptoms/")
        readback = page.locator("#condition-in-words")
        expect(readback).to_have_text("常に表示")
        page.click("text=条件を追加")
        page.select_option("[aria-label='表示条件：条件1の項目']", "report.diagnosis_class")
        page.select_option("[aria-label='表示条件：条件1の比べ方']", "eq")
        page.select_option("[aria-label='表示条件：条件1の値']", "confirmed_patient")
        page.click("text=条件を追加")
        page.select_option("[aria-label='表示条件：条件2の項目']", "report.diagnosis_class")
        page.select_option("[aria-label='表示条件：条件2の値']", "suspected_patient")
        page.select_option("[aria-label='表示条件：条件の組み合わせ']", "or")
        expect(readback).to_have_text("「診断（検案）した者（死体）の類型（診断分類）」が「患者（確定例）」 または "
                                      "「診断（検案）した者（死体）の類型（診断分類）」が「疑似症患者」のとき表示")
        page.click("button:has-text('検証して保存')")
        page.wait_for_url(base)

        page.select_option("[aria-label='ルールの条件：条件1の項目']", "care.hospitalized")
        page.select_option("[aria-label='ルールの条件：条件1の値']", "yes")
        page.select_option("#rule-targets", ["care.admission_date"])
        expect(page.locator("#rule-builder .readback")).to_have_text("「入院の有無」が「有」のとき、「入院年月日」は必須。")
        page.click("text=このルールを追加して保存")
        page.wait_for_url(base)
        expect(rules).to_contain_text("「入院の有無」が「有」のとき、「入院年月日」は必須。［エラー（確定できない）］")

    defn = FormDefinition.objects.get(pk=draft.pk).definition
    symptoms = next(i for i in defn["items"] if i["id"] == "clinical.symptoms")
    assert symptoms["visible_when"] == {"or": [{"item": "report.diagnosis_class", "eq": "confirmed_patient"},
                                               {"item": "report.diagnosis_class", "eq": "suspected_patient"}]}
    rule = next(r for r in defn["rules"] if r["id"] == "custom.1")
    assert rule["kind"] == "required_if" and rule["severity"] == "error"
    assert rule["params"] == {"when": {"item": "care.hospitalized", "eq": "yes"}, "items": ["care.admission_date"]}
