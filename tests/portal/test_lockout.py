"""Brute-force lockout a stranger cannot turn against the account holder: per user name and address plus per
address, exponential backoff, a lock that ends when it says and a counter that then starts again, one answer for
locked and wrong, no typed user name (or password typed into it) in the audit log."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.accounts import throttle
from assist_portal.accounts.models import SignInThrottle
from assist_portal.accounts.services import GENERIC_FAILURE
from assist_portal.audit.models import AuditEvent
from tests.portal.conftest import PASSWORD, current_totp

pytestmark = [pytest.mark.django_db, pytest.mark.security]

STRANGER = "203.0.113.9"
HOSPITAL = "192.0.2.10"


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    """Many sign-in attempts per test: a fast hasher keeps them quick (the algorithm is not what is tested)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, movable: clock.advance(seconds)."""
    class Clock:
        now = timezone.now()

        def advance(self, seconds):
            self.now += timedelta(seconds=seconds)

    c = Clock()
    monkeypatch.setattr(throttle, "_now", lambda: c.now)
    return c


def attempt(client, username, password, code="", address=STRANGER):
    return client.post(reverse("accounts:login"), {"username": username, "password": password, "otp_token": code},
                       REMOTE_ADDR=address)


def holder_signs_in(client, user, address) -> bool:
    device = TOTPDevice.objects.get(user=user)
    device.throttle_reset()
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # the same 30-s code may be used again in a test
    device.refresh_from_db()
    client.logout()
    return attempt(client, user.username, PASSWORD, current_totp(device), address).status_code == 302


def test_a_stranger_elsewhere_never_locks_the_holder_out(client, physician, clock, settings):
    for _ in range(settings.LOGIN_MAX_FAILURES * 3):
        assert attempt(client, physician.username, "guess").status_code == 401
    assert throttle.is_locked(throttle.Source(physician.username, STRANGER))
    # The holder at the hospital is not locked at all, and the stranger's own right guess would be refused.
    assert holder_signs_in(client, physician, HOSPITAL)
    assert not holder_signs_in(client, physician, STRANGER)


def test_repeated_wrong_passwords_cannot_keep_an_account_locked_past_the_backoff(client, physician, clock, settings):
    """Even from the holder's own address (one NAT): the lock ends when it says, refusals during it do not
    extend it, and when it ends the counter starts again from zero."""
    for _ in range(settings.LOGIN_MAX_FAILURES):
        attempt(client, physician.username, "guess", address=HOSPITAL)
    row = SignInThrottle.objects.get(scope="account_address")
    ends = row.locked_until
    assert ends - clock.now == timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    for _ in range(8):  # a stranger hammering during the lock
        clock.advance(10)
        attempt(client, physician.username, "guess", address=HOSPITAL)
    row.refresh_from_db()
    assert row.locked_until == ends
    clock.now = ends + timedelta(seconds=1)
    # One more wrong guess after the end does not lock again: the counter restarted.
    attempt(client, physician.username, "guess", address=HOSPITAL)
    assert not throttle.is_locked(throttle.Source(physician.username, HOSPITAL))
    assert holder_signs_in(client, physician, HOSPITAL)


def test_each_further_lock_doubles_up_to_the_cap(client, physician, clock, settings):
    settings.LOGIN_MAX_FAILURES = 2
    settings.LOGIN_LOCKOUT_SECONDS = 60
    settings.LOGIN_LOCKOUT_MAX_SECONDS = 300
    lengths = []
    for _ in range(5):
        for _ in range(2):
            attempt(client, physician.username, "guess")
        row = SignInThrottle.objects.get(scope="account_address")
        lengths.append(int((row.locked_until - clock.now).total_seconds()))
        clock.now = row.locked_until + timedelta(seconds=1)
    assert lengths == [60, 120, 240, 300, 300]
    # A quiet day and the doubling starts over.
    clock.advance(settings.LOGIN_BACKOFF_RESET_SECONDS + 1)
    for _ in range(2):
        attempt(client, physician.username, "guess")
    row = SignInThrottle.objects.get(scope="account_address")
    assert int((row.locked_until - clock.now).total_seconds()) == 60


def test_one_address_cannot_try_many_accounts(client, physician, clock, settings):
    settings.LOGIN_IP_MAX_FAILURES = 6
    for i in range(6):
        attempt(client, f"name{i}", "guess")
    # Locked for every name from that address (the holder's right credentials too)…
    assert not holder_signs_in(client, physician, STRANGER)
    locked = AuditEvent.objects.get(action="login.locked")
    assert locked.detail["scope"] == "address" and locked.ip == STRANGER
    # …but not from anywhere else, and not after the lock ends.
    assert holder_signs_in(client, physician, HOSPITAL)
    clock.advance(settings.LOGIN_LOCKOUT_SECONDS + 1)
    assert holder_signs_in(client, physician, STRANGER)


def _error(response) -> tuple[int, str]:
    html = response.content.decode()
    return response.status_code, html.split('class="error"', 1)[1].split("</p>", 1)[0]


def test_locked_wrong_and_unknown_get_one_answer(client, physician, clock, settings):
    wrong = _error(attempt(client, physician.username, "guess", "123456"))
    unknown = _error(attempt(client, "nobody-here", "guess", "123456"))
    for _ in range(settings.LOGIN_MAX_FAILURES):
        attempt(client, physician.username, "guess")
    device = TOTPDevice.objects.get(user=physician)
    locked = _error(attempt(client, physician.username, PASSWORD, current_totp(device)))
    assert wrong == unknown == locked
    assert wrong[0] == 401 and GENERIC_FAILURE in wrong[1]


def test_a_password_typed_as_user_name_is_stored_nowhere(client, central_admin, login, settings):
    secret = "Sakura-Passw0rd!"
    for _ in range(settings.LOGIN_MAX_FAILURES + 1):
        attempt(client, secret, "whatever")
    events = list(AuditEvent.objects.filter(action__startswith="login."))
    assert {e.action for e in events} == {"login.failure", "login.locked", "login.refused_locked"}
    for event in events:
        row = " ".join(str(v) for v in (event.actor_username, event.object_type, event.object_id, event.detail))
        assert secret.lower() not in row.lower() and secret[:6].lower() not in row.lower()
        assert event.object_id == throttle.name_hash(secret)
    assert not any(secret in str(v) for v in SignInThrottle.objects.values_list("key", flat=True))
    login(client, central_admin)
    body = b"".join(client.get(reverse("central:audit-export")).streaming_content).decode("utf-8-sig")
    assert secret not in body and secret[:6] not in body


def test_a_made_up_forwarded_address_does_not_escape_the_lockout(client, physician, clock, settings):
    """Behind the proxy, the address is the one the proxy added (the last entry), not one the client wrote."""
    settings.TRUST_X_FORWARDED_FOR = True
    for i in range(settings.LOGIN_MAX_FAILURES + 2):
        client.post(reverse("accounts:login"), {"username": physician.username, "password": "guess", "otp_token": ""},
                    REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, {STRANGER}")
    assert throttle.is_locked(throttle.Source(physician.username, STRANGER))
    assert set(AuditEvent.objects.filter(action="login.failure").values_list("ip", flat=True)) == {STRANGER}
