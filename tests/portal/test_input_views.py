"""The as-you-type endpoints (/input/date, /input/kana, /input/postal): staff only, jpinput's answers as JSON,
nothing typed is logged, audited or cached."""
from __future__ import annotations

import logging
from datetime import date

import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, clerk, login):
    return login(client, clerk)


def get(client, name: str, **params):
    """The page POSTs what is typed (form-encoded): it never sits in a URL or an access log."""
    return client.post(reverse(f"input:{name}"), params)


def test_urls():
    assert reverse("input:date") == "/input/date"
    assert reverse("input:kana") == "/input/kana"
    assert reverse("input:postal") == "/input/postal"


def test_date(staff):
    response = get(staff, "date", q="R3.1.10")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "iso": "2021-01-10", "display": "2021年1月10日（令和3年）", "message": "",
                               "incomplete": False}
    assert get(staff, "date", q="２０２１／０１／１０").json()["iso"] == "2021-01-10"
    assert get(staff, "date", q="令和元年5月1日").json()["display"] == "2019年5月1日（令和元年）"
    assert get(staff, "date", q="R3.1").json() == {"ok": False, "iso": None, "display": "",
                                                  "message": "日も入力してください。", "incomplete": True}
    refused = get(staff, "date", q="H31.5.1").json()
    assert refused["ok"] is False and refused["incomplete"] is False
    assert refused["message"] == "平成は2019年4月30日までです（2019年5月1日は令和元年5月1日）。"
    assert get(staff, "date").json()["incomplete"] is True


def test_date_notes_a_future_date_against_the_local_day(staff, monkeypatch):
    from assist_portal.notifications import services

    monkeypatch.setattr(services, "local_date", lambda: date(2021, 1, 10))
    assert get(staff, "date", q="2021-01-10").json()["message"] == ""
    later = get(staff, "date", q="2021-01-11").json()
    assert later["ok"] is True and later["message"] == "本日（2021年1月10日）より後の日付です。"


def test_kana(staff):
    assert get(staff, "kana", q="やまだ　たろう").json() == {"value": "ヤマダ　タロウ", "message": ""}
    assert get(staff, "kana", q="ﾔﾏﾀﾞ ﾀﾛｳ").json() == {"value": "ヤマダ　タロウ", "message": ""}
    assert get(staff, "kana", q="やまだ😀").json()["message"].startswith("フリガナはカタカナで入力してください")
    assert get(staff, "kana", q="やまだ", max="2").json()["message"] == "2文字以内で入力してください（現在3文字）。"
    assert get(staff, "kana", q="やまだ", max="x").json()["message"] == ""  # a bad limit is ignored


def test_postal(staff):
    assert get(staff, "postal", q="〒１００－０００１").json() == {
        "code": "100-0001", "addresses": [{"prefecture": "東京都", "city": "千代田区", "town": "千代田"}],
        "message": "", "incomplete": False, "warning": ""}
    body = get(staff, "postal", q="7300011").json()
    assert body["addresses"] == [{"prefecture": "広島県", "city": "広島市中区", "town": "基町"}]
    assert get(staff, "postal", q="100").json()["incomplete"] is True
    warned = get(staff, "postal", q="100-0001", address="広島県広島市中区基町10-1").json()
    assert warned["warning"].startswith("郵便番号100-0001は東京都の番号ですが、住所は広島県になっています。")


@pytest.mark.parametrize("name", ["date", "kana", "postal"])
def test_sign_in_with_two_factors_is_required(client, clerk, name):
    response = get(client, name, q="R3.1.10")
    assert response.status_code == 302 and "/accounts/login" in response["Location"]
    client.force_login(clerk)  # password only, no TOTP yet
    response = get(client, name, q="R3.1.10")
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


@pytest.mark.parametrize("name", ["date", "kana", "postal"])
def test_staff_only(client, central_admin, login, name):
    login(client, central_admin)
    assert get(client, name, q="R3.1.10").status_code == 403


@pytest.mark.parametrize("name", ["date", "kana", "postal"])
def test_post_only_and_no_cache(staff, physician, login, client, name):
    assert staff.get(reverse(f"input:{name}"), {"q": "R3.1.10"}).status_code == 405
    response = get(staff, name, q="x")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert get(login(client, physician), name, q="x").status_code == 200


@pytest.mark.parametrize("name", ["date", "kana", "postal"])
def test_csrf_token_is_required(clerk, name):
    from django.test import Client

    from tests.portal.conftest import verified_login

    strict = verified_login(Client(enforce_csrf_checks=True), clerk)
    assert strict.post(reverse(f"input:{name}"), {"q": "R3.1.10"}).status_code == 403


@pytest.mark.parametrize("name", ["date", "kana", "postal"])
def test_overlong_input_is_refused_cheaply(staff, name):
    response = get(staff, name, q="あ" * 2001)
    assert response.status_code == 400
    assert response.json() == {"message": "入力が長すぎます。"}


def test_nothing_typed_is_logged_or_audited(staff, caplog):
    typed = {"date": "令和3年1月10日", "kana": "やまだ　たろう", "postal": "〒730-0011"}
    before = AuditEvent.objects.count()
    with caplog.at_level(logging.DEBUG):
        for name, q in typed.items():
            assert get(staff, name, q=q, address="広島県広島市中区基町10-1").status_code == 200
        assert get(staff, "kana", q="あ" * 2001).status_code == 400
    assert AuditEvent.objects.count() == before
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for value in [*typed.values(), "ヤマダ", "730-0011", "基町", "2021-01-10", "あああ"]:
        assert value not in logged
