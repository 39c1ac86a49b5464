"""The form page as the server renders it (no browser): dates, kana and postal codes shown one way, the check
endpoint the page calls when a field is left, the error summary, what a fresh form does not say."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from django.urls import reverse

from assist_portal.notifications.templatetags.ja_format import date_ja, datetime_ja, postal
from tests.portal.conftest import open_from_emr

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"  # 高橋　健, born 1942-07-21, postal code 4600008 in the extract


@pytest.fixture
def launched(client, clerk, published):
    published("2021-03")
    return open_from_emr(client, clerk, PATIENT)


def test_filters_show_dates_and_postal_codes_one_way():
    assert date_ja("2021-01-10") == "2021年1月10日"
    assert date_ja(date(2019, 5, 1)) == "2019年5月1日"
    assert date_ja(datetime(2021, 1, 9, 16, 0, tzinfo=UTC)) == "2021年1月10日"  # 01:00 JST the next day
    assert datetime_ja(datetime(2021, 1, 9, 16, 5, tzinfo=UTC)) == "2021年1月10日 01:05"
    assert date_ja(None) == "" and date_ja("不明") == "不明"
    assert postal("4600008") == "460-0008" and postal("〒460-0008") == "460-0008" and postal("12-34") == "12-34"


def test_print_shows_dates_the_japanese_way(client, launched):
    html = client.get(reverse("notifications:print", args=[launched.uuid])).content.decode()
    assert "1942年7月21日" in html and "1942-07-21" not in html
    assert "460-0008" in html and "4600008" not in html


def post_values(notification, action="save", **changes):
    """The form as the page posts it: the stored values (rows as tests-<i>-<key>, lists repeated) plus changes."""
    data: dict = {"action": action, "lock_version": str(notification.lock_version)}
    for key, value in notification.values.items():
        if key == "tests":
            for i, row in enumerate(value):
                data.update({f"tests-{i}-{k}": v for k, v in row.items()})
        elif isinstance(value, dict):  # an age
            data[key], data[key + "__unit"] = str(value["value"]), value["unit"]
        else:
            data[key] = value
    data.update(changes)
    return data


def item_block(html: str, html_id: str) -> str:
    """The HTML of one item: from its control's wrapper to the end of its own message list."""
    start = html.index(f'data-html-id="{html_id}"')
    end = html.index("</ul>", html.index(f'id="{html_id}-msgs"'))
    return html[start:end]


def test_characters_hersys_cannot_take_and_too_long_text_are_said_under_the_item_and_nothing_is_cut(client,
                                                                                                   launched):
    url = reverse("notifications:form", args=[launched.uuid])
    remarks = "経過観察中。" * 700  # 4,200 characters, the limit is 4,000
    response = client.post(url, post_values(launched, **{"patient.name": "高橋😀健", "notes.remarks": remarks,
                                                         "patient.occupation": "𠮷野家 店員"}))
    assert response.status_code == 302
    launched.refresh_from_db()
    assert launched.values["notes.remarks"] == remarks and launched.values["patient.name"] == "高橋😀健"
    html = client.get(url).content.decode()
    assert "絵文字は入力できません（😀）" in item_block(html, "f-patient-name")
    assert "HER-SYSに登録できない文字" in item_block(html, "f-patient-occupation")
    assert "4000文字以内で入力してください（現在4200文字）" in item_block(html, "f-notes-remarks")
    assert remarks in html  # shown in full, never cut
    assert " maxlength=" not in html  # the browser never cuts a paste silently either


def test_a_fresh_form_shows_no_required_error_only_a_neutral_unfilled(client, launched):
    html = client.get(reverse("notifications:form", args=[launched.uuid])).content.decode()
    assert "は必須です" not in html and 'id="error-summary"' not in html
    assert "未入力" in html and 'id="progress"' in html and "入力済み" in html
    assert "高橋　健" in html and "1942年7月21日（昭和17年）" in html and "様式" in html  # the header
    assert "ss-mix2:ADT-00 PID-5" not in html  # sources in words, not raw strings
    assert "電子カルテ：SS-MIX2 患者基本情報（ADT-00）の氏名（PID-5）" in html


def test_a_confirm_attempt_lists_every_error_at_the_top_and_under_its_own_item(client, launched, physician, login):
    login(client, physician)
    url = reverse("notifications:form", args=[launched.uuid])
    response = client.post(url, post_values(launched, action="confirm", **{
        "clinical.onset_date": "R3.1.20",  # after the diagnosis date (2021-01-09)
        "patient.phone": "123"}))
    assert response.status_code == 400
    html = response.content.decode()
    summary = html[html.index('id="error-summary"'):html.index("</div>", html.index('id="error-summary"'))]
    links = summary.count("<li>")
    assert f"確認が必要な項目が{links}件あります" in summary and links >= 3
    assert 'href="#f-patient-phone"' in summary and 'href="#f-report-diagnosis_class"' in summary
    assert "「発病年月日」は「診断（検案）年月日」と同じ日かそれより前" in item_block(html, "f-clinical-onset_date")
    assert "「発病年月日」は「診断（検案）年月日」と同じ日かそれより前" in item_block(html, "f-clinical-diagnosis_date")
    assert "電話番号の形式" in item_block(html, "f-patient-phone")
    assert "は必須です" in item_block(html, "f-report-diagnosis_class")
    phone = re.search(r'<input[^>]* id="f-patient-phone"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in phone and 'aria-describedby="f-patient-phone-msgs"' in phone


def test_after_a_save_the_message_counts_what_needs_checking(client, launched):
    url = reverse("notifications:form", args=[launched.uuid])
    client.post(url, post_values(launched, **{"patient.phone": "123", "clinical.onset_date": "2021/2/30"}))
    html = client.get(url).content.decode()
    assert "下書きを保存しました。確認が必要な項目が2件あります。" in html
    assert "確認が必要な項目が2件あります</h2>" in html
    assert "「発病年月日」：2月は28日までです（2021年2月30日はありません）。（入力：2021/2/30）" in item_block(
        html, "f-clinical-onset_date")


def test_the_check_endpoint_evaluates_the_draft_like_a_save_and_stores_nothing(client, launched):
    from assist_portal.audit.models import AuditEvent

    url = reverse("notifications:check", args=[launched.uuid])
    before, audits = launched.values, AuditEvent.objects.count()
    body = client.post(url, {"patient.phone": "123", "clinical.onset_date": "R3.1.7", "patient.birth_date": "2015/4/1",
                             "clinical.diagnosis_date": "2021-01-09", "patient.name_kana": "たかはし"}).json()
    assert body["fields"]["f-patient-phone"]["invalid"] is True
    assert "電話番号の形式" in body["fields"]["f-patient-phone"]["messages"][0]["text"]
    assert body["fields"]["f-clinical-onset_date"] == {"messages": [], "invalid": False, "visible": True}
    assert body["fields"]["f-patient-guardian_name"]["visible"] is True  # 5 years old at diagnosis
    assert body["fields"]["f-patient-age"]["derived"] == {"value": "5", "unit": "years"}  # the page updates the age
    assert body["fields"]["f-patient-name_kana"]["messages"] == []  # converted like a save converts it
    assert "入力済み" in body["progress_html"] and "エラー 1件" in body["progress_html"]
    launched.refresh_from_db()
    assert launched.values == before and AuditEvent.objects.count() == audits
    assert client.get(url).status_code == 405


def test_the_check_endpoint_is_for_the_hospitals_staff_only(client, launched, other_hospital, make_user, login):
    url = reverse("notifications:check", args=[launched.uuid])
    login(client, make_user("clerk_b", "clerk", other_hospital))
    assert client.post(url, {"patient.phone": "123"}).status_code == 404


def test_the_audit_export_is_in_japan_time(client, central_admin, login):
    from zoneinfo import ZoneInfo

    from assist_portal.audit.models import AuditEvent
    from assist_portal.audit.services import audit_record

    audit_record("notification.list", hospital_code="H0001")
    at = AuditEvent.objects.get().at
    login(client, central_admin)
    body = b"".join(client.get(reverse("central:audit-export")).streaming_content).decode("utf-8-sig")
    assert at.astimezone(ZoneInfo("Asia/Tokyo")).isoformat(timespec="seconds") in body
    assert "+09:00" in body and "+00:00" not in body


def test_a_moved_draft_tells_staff_what_changed_without_internal_ids(client, launched, published):
    published("2022-09")  # publishing moves the draft in flight to the new version, with a report
    launched.refresh_from_db()
    assert launched.definition.version == "2022-09" and launched.migration_report
    html = client.get(reverse("notifications:form", args=[launched.uuid])).content.decode()
    notice = html[html.index('id="migration-report"'):html.index("</div>", html.index('id="migration-report"'))]
    assert "項目「発生届の対象（届出対象区分）」が加わりました（必須）。" in notice
    assert "自動選択・候補が加わりました" in notice
    assert "target.suggest_age65" not in notice and "ルール「" not in notice and "report.notification_target" not in notice


def test_100_kb_of_text_is_refused_with_a_message_and_shown_again_whole(client, launched):
    url = reverse("notifications:form", args=[launched.uuid])
    huge = "経過" * 50_000  # 100,000 characters
    response = client.post(url, post_values(launched, **{"notes.remarks": huge, "patient.occupation": "会社員"}))
    assert response.status_code == 400
    html = response.content.decode()
    assert "「その他感染症のまん延の防止及び当該者の医療のために医師が必要と認める事項」が長すぎるため保存していません" \
           "（現在100000文字、4000文字以内）" in html
    assert huge in html  # nothing cut, nothing lost: shortened by the person, not by the program
    launched.refresh_from_db()
    assert "notes.remarks" not in launched.values and "patient.occupation" not in launched.values  # nothing saved
