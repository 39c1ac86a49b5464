"""Security keys / passkeys (WebAuthn, django-otp-webauthn) as a second factor beside TOTP, through HTTP with a
software authenticator (tests/portal/soft_authenticator.py): the server's real checks of challenge, origin, RP id,
signature and counter run. Registration needs a session that passed two factors; sign-in is password, then the
key; a key of another account, a replayed answer or a wrong origin is refused and counts towards the lockout; the
holder is e-mailed when a key is added or removed; an administrator's reset removes the keys too."""
from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from assist_portal.accounts import keys as key_services
from assist_portal.accounts.throttle import account_locks
from assist_portal.audit.models import AuditEvent
from tests.portal.conftest import PASSWORD, current_totp
from tests.portal.soft_authenticator import SoftKey, b64url

pytestmark = [pytest.mark.django_db, pytest.mark.security]
ORIGIN = "http://localhost:8000"


@pytest.fixture(autouse=True)
def relying_party(settings):
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [ORIGIN]


def post_json(client, name, body=None):
    return client.post(reverse(name), data=json.dumps(body or {}), content_type="application/json")


def register(client, key: SoftKey, name: str = "職員証のキー", **create):
    begin = post_json(client, "accounts:key_register_begin", {"name": name})
    assert begin.status_code == 200, begin.content
    return post_json(client, "accounts:key_register_complete", key.create(begin.json(), **create))


def password_step(client, user, code: str = ""):
    return client.post(reverse("accounts:login"), {"username": user.username, "password": PASSWORD,
                                                   "otp_token": code, "next": "/notifications/"})


def key_step(client, key: SoftKey, **get):
    begin = post_json(client, "accounts:login_key_begin")
    assert begin.status_code == 200, begin.content
    return begin.json(), post_json(client, "accounts:login_key_complete", key.get(begin.json(), **get))


@pytest.fixture
def clerk_with_key(client, clerk, login):
    login(client, clerk)
    key = SoftKey(origin=ORIGIN)
    assert register(client, key).status_code == 200
    client.post(reverse("accounts:logout"))
    return clerk, key


def test_a_signed_in_person_registers_a_key_and_is_told_by_mail(client, clerk, login):
    clerk.email = "sato@example.jp"
    clerk.save()
    login(client, clerk)
    page = client.get(reverse("accounts:keys"))
    assert page.status_code == 200 and "登録済みのキーはありません" in page.content.decode()
    key = SoftKey(origin=ORIGIN)
    begin = post_json(client, "accounts:key_register_begin", {"name": "職員証のキー"})
    options = begin.json()
    assert options["rp"]["id"] == "localhost" and options["excludeCredentials"] == []
    done = post_json(client, "accounts:key_register_complete", key.create(options))
    assert done.status_code == 200 and done.json()["redirect"] == reverse("accounts:keys")
    stored = WebAuthnCredential.objects.get(user=clerk)
    assert stored.name == "職員証のキー" and stored.confirmed
    page = client.get(reverse("accounts:keys")).content.decode()
    assert "職員証のキー" in page and "を登録しました" in page
    assert AuditEvent.objects.filter(action="user.key_add", actor_username=clerk.username).count() == 1
    assert [m.subject for m in mail.outbox] == ["【HER-SYS登録補助】セキュリティキーが登録されました"]
    assert "職員証のキー" in mail.outbox[0].body and mail.outbox[0].to == ["sato@example.jp"]
    # A second registration excludes the key already there (the authenticator refuses to register it twice).
    again = post_json(client, "accounts:key_register_begin", {"name": ""}).json()
    assert [d["id"] for d in again["excludeCredentials"]] == [b64url(key.credential_id)]


def test_registration_needs_two_factors(clerk):
    password_only = Client()
    assert password_only.login(username=clerk.username, password=PASSWORD)
    for name in ("accounts:key_register_begin", "accounts:key_register_complete"):
        response = post_json(password_only, name, {"name": "x"})
        assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert not WebAuthnCredential.objects.exists()


def test_a_bad_registration_is_refused_and_saves_nothing(client, clerk, login):
    login(client, clerk)
    wrong_origin = register(client, SoftKey(origin=ORIGIN), origin="https://evil.example")
    assert wrong_origin.status_code == 400 and "登録できませんでした" in wrong_origin.json()["error"]
    # An answer without a begun ceremony (or a replayed one: the challenge is used once) is refused too.
    key = SoftKey(origin=ORIGIN)
    options = post_json(client, "accounts:key_register_begin", {"name": "a"}).json()
    answer = key.create(options)
    assert post_json(client, "accounts:key_register_complete", answer).status_code == 200
    replay = post_json(client, "accounts:key_register_complete", answer)
    assert replay.status_code == 400 and "見つかりません" in replay.json()["error"]
    too_long = post_json(client, "accounts:key_register_begin", {"name": "あ" * 65})
    assert too_long.status_code == 400 and "64文字以内" in too_long.json()["error"]
    assert WebAuthnCredential.objects.count() == 1
    assert AuditEvent.objects.filter(action="user.key_refused").count() == 1


def test_sign_in_with_password_then_key(client, clerk_with_key):
    clerk, key = clerk_with_key
    response = password_step(client, clerk)
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login_key")
    # Password alone does not sign in: the key step is pending, no page opens.
    assert client.get(reverse("notifications:list")).status_code == 302
    page = client.get(reverse("accounts:login_key")).content.decode()
    assert "セキュリティキーで確認" in page and "js/webauthn.js" in page
    options, done = key_step(client, key)
    assert [d["id"] for d in options["allowCredentials"]] == [b64url(key.credential_id)]
    assert done.status_code == 200 and done.json()["redirect"] == "/notifications/"
    assert client.get(reverse("notifications:list")).status_code == 200
    event = AuditEvent.objects.filter(action="login.success", actor_username=clerk.username).get()
    assert event.detail.get("method") == "webauthn"
    assert WebAuthnCredential.objects.get(user=clerk).last_used_at is not None


def test_totp_still_works_for_a_person_with_a_key(client, clerk_with_key):
    clerk, _ = clerk_with_key
    response = password_step(client, clerk, current_totp(TOTPDevice.objects.get(user=clerk)))
    assert response.status_code == 302 and response["Location"] == "/notifications/"


def test_no_key_step_without_the_password(client, clerk_with_key):
    _, key = clerk_with_key
    assert post_json(client, "accounts:login_key_begin").status_code == 403
    assert client.get(reverse("accounts:login_key")).status_code == 302
    bad = client.post(reverse("accounts:login"), {"username": "clerk_sato", "password": "wrong-password",
                                                  "otp_token": ""})
    assert bad.status_code == 401  # a wrong password never reaches the key step
    assert post_json(client, "accounts:login_key_begin").status_code == 403


def test_another_accounts_key_or_a_replay_is_refused_and_counts_towards_the_lockout(
        client, clerk_with_key, physician, login, settings):
    settings.LOGIN_MAX_FAILURES = 4
    clerk, clerk_key = clerk_with_key
    other = Client()
    login(other, physician)
    physician_key = SoftKey(origin=ORIGIN)
    assert register(other, physician_key).status_code == 200

    password_step(client, clerk)
    _, wrong_key = key_step(client, physician_key)  # the physician's key for the clerk's sign-in
    assert wrong_key.status_code == 400 and "確認できませんでした" in wrong_key.json()["error"]
    _, wrong_origin = key_step(client, clerk_key, origin="https://evil.example")
    assert wrong_origin.status_code == 400
    options = post_json(client, "accounts:login_key_begin").json()
    answer = clerk_key.get(options)
    assert post_json(client, "accounts:login_key_complete", {"id": "x"}).status_code == 400  # garbage
    replay = post_json(client, "accounts:login_key_complete", answer)  # challenge already used by the garbage
    assert replay.status_code == 403 and "しばらくの間" in replay.json()["error"]
    assert account_locks(clerk).exists()
    assert client.get(reverse("notifications:list")).status_code == 302
    assert AuditEvent.objects.filter(action="login.failure", actor_username=clerk.username,
                                     detail__reason="webauthn").count() == 4


def test_the_holder_removes_a_key_but_never_another_ones(client, clerk_with_key, physician, login):
    clerk, _ = clerk_with_key
    other = Client()
    login(other, physician)
    assert register(other, SoftKey(origin=ORIGIN), name="医師のキー").status_code == 200
    physician_key = WebAuthnCredential.objects.get(user=physician)
    login(client, clerk)
    assert client.post(reverse("accounts:keys"), {"remove": str(physician_key.pk)}).status_code == 404
    assert client.post(reverse("accounts:keys"), {"remove": "１"}).status_code == 404
    assert WebAuthnCredential.objects.filter(pk=physician_key.pk).exists()
    own = WebAuthnCredential.objects.get(user=clerk)
    clerk.email = "sato@example.jp"
    clerk.save()
    mail.outbox.clear()
    response = client.post(reverse("accounts:keys"), {"remove": str(own.pk)}, follow=True)
    assert "の登録を削除しました" in response.content.decode()
    assert not WebAuthnCredential.objects.filter(user=clerk).exists()
    assert [m.subject for m in mail.outbox] == ["【HER-SYS登録補助】セキュリティキーの登録が削除されました"]
    assert AuditEvent.objects.filter(action="user.key_remove", actor_username=clerk.username).count() == 1
    # Without a key the empty code is a wrong code again (no key step).
    client.post(reverse("accounts:logout"))
    assert password_step(client, clerk).status_code == 401


def test_an_administrators_reset_removes_the_keys(client, clerk_with_key, hospital_admin, login):
    clerk, _ = clerk_with_key
    login(client, hospital_admin)
    response = client.post(reverse("hospitaladmin:staff"), {"reset": clerk.pk})
    assert response.status_code in (200, 302)
    assert not WebAuthnCredential.objects.filter(user=clerk).exists()


def _session_request(client, user):
    """A request carrying the signed-in client's session (for the services a later step calls)."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.session = SessionStore(client.session.session_key)
    request.user = user
    return request


def test_second_factor_re_check_accepts_a_totp_code_or_a_key(client, clerk_with_key, login, settings):
    """The function a review step calls (accounts.services.second_factor_verify) before a confirmation."""
    from assist_portal.accounts.services import second_factor_challenge, second_factor_recent, second_factor_verify

    clerk, key = clerk_with_key
    login(client, clerk)
    request = _session_request(client, clerk)
    request.session[key_services.VERIFIED_AT] = 0
    assert not second_factor_recent(request, 300)
    options = second_factor_challenge(request)
    assert [d["id"] for d in options["allowCredentials"]] == [b64url(key.credential_id)]
    device = second_factor_verify(request, assertion=key.get(options))
    assert isinstance(device, WebAuthnCredential) and second_factor_recent(request, 300)
    # The challenge is used once: the same answer again is refused.
    with pytest.raises(key_services.SecondFactorRefused):
        second_factor_verify(request, assertion=key.get(options))
    totp = TOTPDevice.objects.get(user=clerk)
    assert second_factor_verify(request, otp_token=current_totp(totp)) == totp
    with pytest.raises(key_services.SecondFactorRefused):
        second_factor_verify(request, otp_token="")
    assert AuditEvent.objects.filter(action="login.failure", detail__reason="recheck_webauthn").count() == 1
