"""Sign-in: password AND TOTP for every human role, lockout after repeated failures, everything audited."""
import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.accounts.models import SignInThrottle
from assist_portal.accounts.services import ENROL_LOCKED, GENERIC_FAILURE
from assist_portal.accounts.throttle import account_locks
from assist_portal.audit.models import AuditEvent
from tests.portal.conftest import PASSWORD, current_totp

pytestmark = [pytest.mark.django_db, pytest.mark.security]


def post_login(client, username, password, code, next_url=""):
    return client.post(reverse("accounts:login"), {"username": username, "password": password, "otp_token": code,
                                                   "next": next_url})


@pytest.mark.parametrize("role", ["physician", "clerk", "hospital_admin", "central_admin"])
def test_every_role_needs_password_and_totp(client, make_user, hospital, role):
    user = make_user(f"u_{role}", role, None if role == "central_admin" else hospital)
    device = TOTPDevice.objects.get(user=user)
    assert post_login(client, user.username, PASSWORD, "").status_code == 401
    assert post_login(client, user.username, PASSWORD, "000000" if current_totp(device) != "000000" else "111111").status_code == 401
    device.refresh_from_db()
    device.throttle_reset()  # django-otp throttles a device after wrong codes; that is tested below
    response = post_login(client, user.username, PASSWORD, current_totp(device))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="login.success", actor_username=user.username).count() == 1


def test_password_alone_does_not_open_pages(client, physician):
    client.login(username=physician.username, password=PASSWORD)  # session without OTP verification
    response = client.get(reverse("notifications:list"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_lockout_after_repeated_failures(client, physician, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert post_login(client, physician.username, "wrong-password", "123456").status_code == 401
    assert account_locks(physician).exists()
    # Even the right password and code are refused while locked — with the same message as a wrong password.
    device = TOTPDevice.objects.get(user=physician)
    response = post_login(client, physician.username, PASSWORD, current_totp(device))
    assert response.status_code == 401
    assert GENERIC_FAILURE in response.content.decode() and "ロック" not in response.content.decode()
    assert AuditEvent.objects.filter(action="login.locked", actor_username=physician.username).exists()
    assert AuditEvent.objects.filter(action="login.refused_locked", actor_username=physician.username).exists()
    assert AuditEvent.objects.filter(action="login.failure").count() == 3


def test_totp_device_is_throttled_after_a_wrong_code(client, physician, settings):
    # django-otp's default throttle after one failure is 1 s: on a loaded machine the second request can come
    # later than that. A long factor makes the test about throttling, not about timing.
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device = TOTPDevice.objects.get(user=physician)
    wrong = "000000" if current_totp(device) != "000000" else "111111"
    assert post_login(client, physician.username, PASSWORD, wrong).status_code == 401
    # Right code right after a wrong one: refused while the device is throttled (brute force slowed down).
    assert post_login(client, physician.username, PASSWORD, current_totp(device)).status_code == 401


def test_failure_message_does_not_tell_which_factor(client, physician):
    a = post_login(client, physician.username, "wrong", "123456").content.decode()
    b = post_login(client, "nobody-here", "wrong", "123456").content.decode()
    assert "正しくありません" in a and "正しくありません" in b


def test_open_redirect_is_refused(client, physician):
    device = TOTPDevice.objects.get(user=physician)
    response = post_login(client, physician.username, PASSWORD, current_totp(device), next_url="https://evil.example/")
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_security_headers(client):
    response = client.get(reverse("accounts:login"))
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cache-Control"] == "no-store"


NEW_PASSWORD = "my-own-secret-7-sakura"


def wrong_code(device) -> str:
    return "000000" if current_totp(device) != "000000" else "111111"


def admin_creates(client, hospital_admin, login, username="new_doctor"):
    """The hospital administrator creates a physician account; returns (user, one-time password, page html)."""
    from assist_portal.accounts.models import User

    login(client, hospital_admin)
    page = client.post(reverse("hospitaladmin:staff"), {"username": username, "display_name": "新人　医師",
                                                         "email": "new.doctor@example.jp", "role": "physician"})
    assert page.status_code == 200
    html = page.content.decode()
    password = html.split('id="initial-password">', 1)[1].split("</code>", 1)[0]
    client.logout()
    return User.objects.get(username=username), password, html


def test_hospital_admin_creates_an_account_without_a_second_factor(client, hospital_admin, hospital, login):
    user, password, html = admin_creates(client, hospital_admin, login)
    assert 'id="created-user"' in html and password
    # The admin sees the one-time password only: no QR code, no otpauth URL, no device exists yet.
    assert "otpauth" not in html and "data:image/svg+xml" not in html
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert user.hospital == hospital and user.role == "physician" and user.must_change_password
    assert AuditEvent.objects.filter(action="user.create").exists()
    # The holder's e-mail address is required (the second-factor notices go there).
    login(client, hospital_admin)
    bad = client.post(reverse("hospitaladmin:staff"), {"username": "x", "role": "clerk", "email": "not-an-address"})
    assert bad.status_code == 400 and "メールアドレス" in bad.content.decode()


def test_user_create_command_prints_no_second_factor(hospital):
    from io import StringIO

    from django.core.management import call_command

    from assist_portal.accounts.models import User

    out = StringIO()
    call_command("user_create", "cmd_admin", role="hospital_admin", hospital="H0001", email="a@example.jp", stdout=out)
    user = User.objects.get(username="cmd_admin")
    assert "初期パスワード" in out.getvalue() and "otpauth" not in out.getvalue()
    assert user.must_change_password and not TOTPDevice.objects.filter(user=user).exists()


def test_first_sign_in_enrols_totp_then_forces_a_password_change(client, hospital_admin, login):
    user, password, _ = admin_creates(client, hospital_admin, login)
    # Right password, no authenticator yet: the enrolment step, not a session.
    response = post_login(client, "new_doctor", password, "")
    assert response.status_code == 302 and response["Location"] == reverse("accounts:enrol")
    assert reverse("accounts:login") in client.get(reverse("notifications:list"))["Location"]
    page = client.get(reverse("accounts:enrol"))
    html = page.content.decode()
    assert page.status_code == 200 and "data:image/svg+xml" in html and "otpauth://" in html
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    # A wrong code is refused and counted.
    refused = client.post(reverse("accounts:enrol"), {"otp_token": wrong_code(device)})
    assert refused.status_code == 401 and "正しくありません" in refused.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert SignInThrottle.objects.get(user=user).failures == 1
    device.throttle_reset()
    # The right code confirms the device and signs in — straight to the password change.
    done = client.post(reverse("accounts:enrol"), {"otp_token": current_totp(device)})
    assert done.status_code == 302 and done["Location"].startswith(reverse("accounts:password_change"))
    device.refresh_from_db()
    assert device.confirmed and not SignInThrottle.objects.filter(user=user).exists()
    enrol_event = AuditEvent.objects.get(action="user.enrol", actor_username="new_doctor")
    assert device.key not in str(enrol_event.detail) and "otpauth" not in str(enrol_event.detail)
    assert AuditEvent.objects.filter(action="login.success", actor_username="new_doctor").exists()
    # Every other page sends the user back to the password change.
    for url in (reverse("notifications:list"), reverse("notifications:demo")):
        forced = client.get(url)
        assert forced.status_code == 302 and forced["Location"].startswith(reverse("accounts:password_change"))
    form_page = client.get(reverse("accounts:password_change"))
    assert form_page.status_code == 200 and "初期パスワード" in form_page.content.decode()
    # Current password required; Django's validators with Japanese messages; the one-time password is not kept.
    change = reverse("accounts:password_change")
    bad_current = client.post(change, {"old_password": "nope", "new_password1": NEW_PASSWORD,
                                       "new_password2": NEW_PASSWORD})
    assert bad_current.status_code == 400 and "現在のパスワードが正しくありません" in bad_current.content.decode()
    too_short = client.post(change, {"old_password": password, "new_password1": "abc", "new_password2": "abc"})
    assert too_short.status_code == 400 and "短すぎます" in too_short.content.decode()
    same = client.post(change, {"old_password": password, "new_password1": password, "new_password2": password})
    assert same.status_code == 400 and "現在と異なるパスワード" in same.content.decode()
    ok = client.post(change, {"old_password": password, "new_password1": NEW_PASSWORD,
                              "new_password2": NEW_PASSWORD})
    assert ok.status_code == 302
    user.refresh_from_db()
    assert not user.must_change_password and user.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="user.password_change", actor_username="new_doctor").exists()
    # The session stays signed in (OTP verified) and normal pages open.
    assert client.get(reverse("notifications:list")).status_code == 200
    # Next sign-in: new password and the enrolled authenticator (the code used above may not be replayed).
    client.logout()
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    assert post_login(client, "new_doctor", password, current_totp(device)).status_code == 401
    device.refresh_from_db()
    device.throttle_reset()
    again = post_login(client, "new_doctor", NEW_PASSWORD, current_totp(device))
    assert again.status_code == 302 and again["Location"] == reverse("notifications:list")


def test_a_user_with_a_confirmed_device_never_reaches_enrolment(client, physician, login):
    device = TOTPDevice.objects.get(user=physician)
    # Password without code: refused like any wrong factor, no enrolment starts, no device is added.
    assert post_login(client, physician.username, PASSWORD, "").status_code == 401
    assert TOTPDevice.objects.filter(user=physician).count() == 1
    assert client.get(reverse("accounts:enrol"))["Location"] == reverse("accounts:login")
    # Posting to the enrolment URL directly gives nothing, anonymous or signed in.
    direct = client.post(reverse("accounts:enrol"), {"otp_token": current_totp(device)})
    assert direct.status_code == 302 and direct["Location"] == reverse("accounts:login")
    login(client, physician)
    direct = client.post(reverse("accounts:enrol"), {"otp_token": current_totp(device)})
    assert direct.status_code == 302 and direct["Location"] == reverse("accounts:login")
    assert list(TOTPDevice.objects.filter(user=physician).values_list("pk", flat=True)) == [device.pk]
    assert not AuditEvent.objects.filter(action="user.enrol").exists()


def test_enrolment_is_refused_once_the_account_got_a_confirmed_device(client, hospital_admin, login):
    user, password, _ = admin_creates(client, hospital_admin, login)
    assert post_login(client, "new_doctor", password, "")["Location"] == reverse("accounts:enrol")
    pending = TOTPDevice.objects.get(user=user)
    TOTPDevice.objects.create(user=user, name="other", confirmed=True)  # e.g. finished in another browser
    response = client.post(reverse("accounts:enrol"), {"otp_token": current_totp(pending)})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login")
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    assert "_auth_user_id" not in client.session


def test_enrolment_expires(client, hospital_admin, login):
    from assist_portal.accounts.services import ENROL_SESSION_KEY

    user, password, _ = admin_creates(client, hospital_admin, login)
    post_login(client, "new_doctor", password, "")
    session = client.session
    session[ENROL_SESSION_KEY] = {**session[ENROL_SESSION_KEY], "expires": 0}
    session.save()
    device = TOTPDevice.objects.get(user=user)
    response = client.post(reverse("accounts:enrol"), {"otp_token": current_totp(device)})
    assert response["Location"] == reverse("accounts:login")
    device.refresh_from_db()
    assert not device.confirmed


def test_lockout_applies_during_enrolment(client, hospital_admin, login, settings):
    settings.LOGIN_MAX_FAILURES = 3
    user, password, _ = admin_creates(client, hospital_admin, login)
    # One wrong password and two wrong enrolment codes share the same counter.
    assert post_login(client, "new_doctor", "wrong-password", "").status_code == 401
    assert post_login(client, "new_doctor", password, "")["Location"] == reverse("accounts:enrol")
    device = TOTPDevice.objects.get(user=user)
    assert client.post(reverse("accounts:enrol"), {"otp_token": wrong_code(device)}).status_code == 401
    device.refresh_from_db()
    device.throttle_reset()
    locked = client.post(reverse("accounts:enrol"), {"otp_token": wrong_code(device)}, follow=True)
    assert ENROL_LOCKED in locked.content.decode()
    assert account_locks(user).exists()
    assert AuditEvent.objects.filter(action="login.locked", actor_username="new_doctor").exists()
    # Even the right code no longer completes the enrolment, and the password is refused while locked.
    device.refresh_from_db()
    device.throttle_reset()
    late = client.post(reverse("accounts:enrol"), {"otp_token": current_totp(device)})
    assert late["Location"] == reverse("accounts:login")
    device.refresh_from_db()
    assert not device.confirmed and "_auth_user_id" not in client.session
    assert GENERIC_FAILURE in post_login(client, "new_doctor", password, "").content.decode()


def test_hospital_admin_resets_a_lost_authenticator(client, hospital_admin, physician, login):
    from django.test import Client

    other_browser = login(Client(), physician)
    assert other_browser.get(reverse("notifications:list")).status_code == 200
    login(client, hospital_admin)
    page = client.post(reverse("hospitaladmin:staff"), {"reset": physician.pk})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="initial-password"' in html
    assert "otpauth" not in html and "data:image/svg+xml" not in html
    password = html.split('id="initial-password">', 1)[1].split("</code>", 1)[0]
    physician.refresh_from_db()
    assert physician.must_change_password and not TOTPDevice.objects.filter(user=physician).exists()
    event = AuditEvent.objects.get(action="user.reset")
    assert event.actor_username == "hadmin" and event.object_id == str(physician.pk)
    assert password not in str(event.detail)
    # Sessions opened before the reset are gone; the old password no longer works.
    assert reverse("accounts:login") in other_browser.get(reverse("notifications:list"))["Location"]
    # An admin cannot reset their own account (it would sign them out with a password they just saw); a
    # hospital administrator does not even see it among the accounts it manages.
    assert client.post(reverse("hospitaladmin:staff"), {"reset": hospital_admin.pk}).status_code == 404
    client.logout()
    assert post_login(client, physician.username, PASSWORD, "").status_code == 401
    # The new one-time password leads to enrolment of a new authenticator.
    response = post_login(client, physician.username, password, "")
    assert response["Location"] == reverse("accounts:enrol")
    assert TOTPDevice.objects.filter(user=physician, confirmed=False).count() == 1


def test_hospital_admin_unlocks_a_locked_account(client, hospital_admin, physician, login, settings):
    settings.LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        post_login(client, physician.username, "wrong", "000000")
    assert account_locks(physician).exists()
    login(client, hospital_admin)
    assert "ロック中" in client.get(reverse("hospitaladmin:staff")).content.decode()
    client.post(reverse("hospitaladmin:staff"), {"unlock": physician.pk})
    assert not account_locks(physician).exists()
    assert AuditEvent.objects.filter(action="user.unlock").exists()
