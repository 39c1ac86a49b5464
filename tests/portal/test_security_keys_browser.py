"""A security key in real Chromium (Chromium's own WebAuthn stack, a CDP virtual authenticator standing in for the
key): a clerk signs in with password + TOTP, registers a key on the keys page, signs out, and signs in again with
the remembered user name, the password and the key — under the product's real CSP (no inline script)."""
from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from assist_portal.audit.models import AuditEvent
from tests.portal.browser import chromium, open_page
from tests.portal.conftest import PASSWORD, current_totp

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}


def test_register_a_key_sign_out_and_sign_in_with_password_and_key(live_server, settings, clerk):
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    assert live_server.url.startswith("http://localhost:")  # a secure context, and a host name as RP id
    totp = TOTPDevice.objects.get(user=clerk)
    code = current_totp(totp)
    csp_errors: list[str] = []
    with chromium() as browser, open_page(browser) as page:
        page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})["authenticatorId"]

        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", clerk.username)
        page.check("#remember-username")  # the terminal may remember the user name
        page.fill("#id_password", PASSWORD)
        page.fill("#id_otp_token", code)
        page.click("button[type=submit]")
        page.wait_for_url("**/notifications/")

        page.click("header nav >> text=セキュリティキー")
        page.wait_for_selector("#no-keys")
        page.fill("#key-name", "このパソコン")
        page.click("#key-start")
        page.wait_for_selector("text=セキュリティキー「このパソコン」を登録しました")
        assert "このパソコン" in page.inner_text("#key-list")
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        assert len(stored) == 1

        page.click("text=ログアウト")
        page.wait_for_url("**/accounts/login/")
        assert page.input_value("#id_username") == clerk.username  # remembered
        page.fill("#id_password", PASSWORD)
        page.press("#id_password", "Enter")  # no one-time code: the key step
        page.wait_for_url("**/notifications/")  # the page asked the key by itself and signed in
        assert "届出一覧" in page.inner_text("header nav")
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        assert stored[0]["signCount"] >= 1
    assert not csp_errors, csp_errors
    assert WebAuthnCredential.objects.get(user=clerk).name == "このパソコン"
    methods = list(AuditEvent.objects.filter(action="login.success", actor_username=clerk.username)
                   .order_by("pk").values_list("detail__method", flat=True))
    assert methods == ["totp", "webauthn"]
