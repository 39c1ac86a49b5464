"""The form page as the server renders it (no browser): dates, kana and postal codes shown one way, the check
endpoint the page calls when a field is left, the error summary, what a fresh form does not say."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.urls import reverse

from assist_portal.notifications.models import Notification
from assist_portal.notifications.templatetags.ja_format import date_ja, datetime_ja, postal
from tests.portal.conftest import launch_path

pytestmark = pytest.mark.django_db
PATIENT = "1100000002"  # 高橋　健, born 1942-07-21, postal code 4600008 in the extract


@pytest.fixture
def launched(client, clerk, published, push, login):
    published("2021-03")
    response = push(client, PATIENT, "ss-mix2")
    login(client, clerk)
    assert client.get(launch_path(response.json()["launch_url"])).status_code == 302
    return Notification.objects.get(patient_ref=PATIENT)


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


def post_values(notification, **values):
    data = {"action": "save", "lock_version": str(notification.lock_version)}
    data.update(values)
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
