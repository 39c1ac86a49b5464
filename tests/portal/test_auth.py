"""Sign-in: password AND TOTP for every human role, lockout after repeated failures, everything audited."""
import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.audit.models import AuditEvent
from tests.portal.conftest import PASSWORD, current_totp

pytestmark = [pytest.mark.django_db, pytest.mark.security]


def post_login(client, username, password, code, next_url=""):
    return client.post(reverse("accounts:login"), {"username": username, "password": password, "otp_token": code,
                                                   "next": next_url})


@pytest.mark.parametrize("role", ["physician", "clerk", "central_admin"])
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
    physician.refresh_from_db()
    assert physician.is_locked()
    # Even the right password and code are refused while locked.
    device = TOTPDevice.objects.get(user=physician)
    response = post_login(client, physician.username, PASSWORD, current_totp(device))
    assert response.status_code == 401
    assert "ロック" in response.content.decode()
    assert AuditEvent.objects.filter(action="login.locked", actor_username=physician.username).exists()
    assert AuditEvent.objects.filter(action="login.failure").count() == 3


def test_totp_device_is_throttled_after_a_wrong_code(client, physician):
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


def test_central_admin_creates_an_account_that_can_sign_in_and_unlocks(client, central_admin, hospital, login,
                                                                        settings):
    from assist_portal.accounts.models import User

    login(client, central_admin)
    page = client.post(reverse("formdefs:users"), {"username": "new_doctor", "display_name": "新人　医師",
                                                   "role": "physician", "hospital": hospital.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="created-user"' in html and "data:image/svg+xml" in html
    password = html.split("<code>", 1)[1].split("</code>", 1)[0]
    user = User.objects.get(username="new_doctor")
    assert user.hospital == hospital and user.role == "physician"
    assert AuditEvent.objects.filter(action="user.create").exists()
    # Missing hospital for hospital staff is refused.
    bad = client.post(reverse("formdefs:users"), {"username": "x", "role": "clerk", "hospital": ""})
    assert bad.status_code == 400
    # The new account signs in with its password and TOTP device.
    client.logout()
    device = TOTPDevice.objects.get(user=user)
    assert post_login(client, "new_doctor", password, current_totp(device)).status_code == 302
    # Lock it, then the central admin unlocks.
    client.logout()
    settings.LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        post_login(client, "new_doctor", "wrong", "000000")
    user.refresh_from_db()
    assert user.is_locked()
    login(client, central_admin)
    client.post(reverse("formdefs:users"), {"unlock": user.pk})
    user.refresh_from_db()
    assert not user.is_locked()
