"""The workflow in real Chromium: a rejection from the sandbox reaches every user of the hospital (and no other
hospital's); an amendment shows its diff on the review step; FAX only never reaches the sandbox.

(The hand-off → 医師確認待ち → review → second-factor re-check → 受理 path is test_e2e_browser.test_whole_flow.)"""
import json

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from assist_portal.delivery.models import Delivery
from assist_portal.delivery.services import delivery_attempt
from assist_portal.notifications import services as nsvc
from tests.conftest import DEMO_SAMPLES
from tests.portal.browser import chromium, open_page, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def confirm(hospital, physician, patient="1100000002"):
    data = json.loads((DEMO_SAMPLES / "fhir" / f"{patient}.json").read_text(encoding="utf-8"))
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=patient, data=data))
    n = nsvc.notification_open_from_extract(extract, physician)
    row, evaluation, delivery = nsvc.notification_confirm(
        n, physician, dict(n.values, **{"report.diagnosis_class": "confirmed_patient"}), n.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return row, delivery


def test_a_sandbox_rejection_is_shown_to_the_hospital_and_to_no_other(live_server, settings, hospital, physician,
                                                                      clerk, make_user, other_hospital, published,
                                                                      sandbox):
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    n, delivery = confirm(hospital, physician)
    sandbox.set_faults(accepted_versions=["2099-01"])  # HER-SYS no longer accepts this item set
    assert delivery_attempt(delivery.pk).status == Delivery.Status.REJECTED
    stranger = make_user("b_clerk", "clerk", other_hospital)
    devices = {u.username: TOTPDevice.objects.get(user=u) for u in (clerk, stranger)}
    with chromium() as browser:
        with open_page(browser) as page:  # another user of the same hospital (not the confirming physician)
            page.goto(live_server.url + "/")
            sign_in(page, clerk, devices[clerk.username])
            page.wait_for_url("**/notifications/")
            banner = page.locator("#attention-banner")
            assert banner.is_visible() and "要対応の届出が1件" in banner.inner_text()
            assert page.inner_text(".nav-count.state-attention .count") == "1"
            banner.locator("a").click()
            page.wait_for_url("**/notifications/?state=attention")
            row = page.locator("tr[data-state=attention]")
            assert row.count() == 1 and "HER-SYSが差し戻し" in row.inner_text()
            row.locator("a").first.click()
            page.wait_for_url("**/notifications/*/")
            assert "受け付けませんでした" in page.inner_text("#delivery-problem")
        with open_page(browser) as page:  # a user of another hospital
            page.goto(live_server.url + "/")
            sign_in(page, stranger, devices[stranger.username])
            page.wait_for_url("**/notifications/")
            assert page.locator("#attention-banner").count() == 0
            assert page.inner_text(".nav-count.state-attention .count") == "0"
            page.goto(live_server.url + "/notifications/?state=")
            assert page.locator("tr[data-state]").count() == 0
            assert str(n.uuid) not in page.content()


def test_an_amendment_shows_its_diff_and_fax_only_never_reaches_the_sandbox(live_server, settings, hospital,
                                                                            physician, published, sandbox):
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    n, first = confirm(hospital, physician)
    assert delivery_attempt(first.pk).status == Delivery.Status.ACCEPTED  # revision 1 reached HER-SYS
    device = TOTPDevice.objects.get(user=physician)
    base = live_server.url
    with chromium() as browser, open_page(browser) as page:
        page.goto(base + f"/notifications/{n.uuid}/")
        sign_in(page, physician, device)
        page.wait_for_url(f"**/notifications/{n.uuid}/")
        page.fill("[name='patient.occupation']", "看護師")
        page.click("button[name=action][value=confirm]")
        page.wait_for_url("**/review/")
        diff = page.locator("#review-diff")
        assert diff.is_visible()
        assert "当該者職業" in diff.inner_text() and "看護師" in diff.locator("ins").inner_text()
        for fieldset in page.locator("fieldset.review-answer").all():
            fieldset.locator("input[value=not_applicable]").check()
        if page.locator("[name=change_physician]").count():
            page.check("[name=change_physician]")
        assert "修正を確定してHER-SYSへ送信" in page.inner_text("#final-confirm")
        page.click("#final-confirm")
        page.wait_for_url("**/status/")
        # No worker runs: revision 2 waits. HER-SYS is said to be down; the paper form went out by FAX.
        page.fill("#fax-health-centre", "千代田保健所")
        page.click("#fax-record")
        page.wait_for_selector("#fax-recorded")
        assert "送信保留" in page.inner_text("#status-label")
        page.click("#fax-only")
        page.wait_for_selector("#fax-decision")
        assert "FAXのみで完了" in page.inner_text("#fax-decision")
    second = n.revisions.get(number=2).delivery
    assert second.status == Delivery.Status.WITHHELD
    assert delivery_attempt(second.pk) is None  # a worker given it sends nothing
    received = sandbox.received()["notifications"]
    assert len(received) == 1 and [r["revision"] for r in received[0]["revisions"]] == [1]
    assert len(sandbox.requests()) == 1  # every POST /fhir/Bundle it ever received: revision 1 only
