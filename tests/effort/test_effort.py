"""`make effort`: how much a filing costs the people doing it, measured on the public sample patients.

1. For every sample patient (demo/emr-samples, SS-MIX2 and FHIR), the form as it opens: items shown, pre-filled
   (EMR, hospital master, computed), suggested (one click to adopt), and to type (required or priority, empty,
   nothing suggested).
2. A scripted completion in real Chromium for a typical patient, from the EMR button to 受理: a clerk completes
   the draft and hands it to the physician, who confirms through the review step; every click and physical
   keystroke in the form is counted (sign-in excluded; the EMR button, clicked once by each person in the EMR, is
   reported beside the figure; Japanese text counted as typed with an IME in romaji: the letters, Space to
   convert, Enter to commit).

Prints a table and `effort: prefilled=N% clicks=N keys=N`, writes bench-results/effort.json, and holds the issue's
targets for the typical patient: at most 10 clicks and 40 keystrokes in the form, at least 45 % of items open
filled."""
from __future__ import annotations

import json
import statistics
from datetime import datetime

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import DEMO_SAMPLES, ROOT
from tests.portal.browser import chromium, open_page, sign_in
from tests.portal.conftest import push_extract

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
VERSION = "2021-03"  # the item set in force when the samples' cases were reported (January 2021)
TYPICAL = "1100000002"  # 78, confirmed by PCR, admitted: the EMR suggests the class, the residence is missing
RESULTS = ROOT / "bench-results" / "effort.json"
FORMATS = ("ss-mix2", "fhir")


def sample_patients() -> list[str]:
    return sorted(p.stem for p in (DEMO_SAMPLES / "fhir").glob("*.json"))


def open_form_effort(hospital, user, patient: str, fmt: str) -> dict:
    """What the form shows when the EMR button opens it for this patient (no notification is created)."""
    import json as _json

    from assist_portal.formdefs.selectors import definition_for_hospital
    from assist_portal.notifications import services
    from formengine import present
    from mapping import formats

    path = (DEMO_SAMPLES / fmt / patient[:3] / patient[3:6] / patient if formats.get(fmt).reads_folder
            else DEMO_SAMPLES / fmt / f"{patient}.json")
    data = formats.read_path(fmt, path)
    if fmt == formats.FHIR:
        data = _json.loads(data.decode("utf-8-sig"))
    extract = services.extract_receive(hospital, services.ExtractPayload(format=fmt, patient_ref=patient, data=data))
    values, provenance = services.prefill_values(extract, hospital, user)
    defn = definition_for_hospital(hospital).definition
    model = present(defn, values, today=services.local_date(), provenance=provenance, stage="confirm").model
    emr_suggested = {k for k, s in (extract.suggestions or {}).items() if isinstance(s, dict) and s.get("value")}
    missing = {m["id"] for m in model["missing_required"]} | {m["id"] for m in model["missing_priority"]}
    shown = prefilled = suggested = to_type = 0
    for section in model["sections"]:
        for entry in section["entries"]:
            if entry["kind"] == "group":
                rows = [r for r in entry["rows"] if r["filled"]] or entry["rows"][:1]
                cells = [c for r in rows for c in r["cells"]]
            else:
                cells = [entry] if entry["visible"] else []
            for f in cells:
                shown += 1
                if f["has_value"]:
                    prefilled += 1
                elif f["id"] in emr_suggested or f["suggestion"]:
                    suggested += 1
                elif f["id"] in missing:
                    to_type += 1
    return {"patient": patient, "format": fmt, "shown": shown, "prefilled": prefilled, "suggested": suggested,
            "to_type": to_type, "prefilled_pct": round(100 * prefilled / shown, 1) if shown else 0.0}


class Counted:
    """A person at the keyboard and mouse: every click and physical keystroke is counted."""

    def __init__(self, page) -> None:
        self.page, self.clicks, self.keys, self.log = page, 0, 0, []

    def click(self, selector: str, why: str) -> None:
        self.page.click(selector)
        self.clicks += 1
        self.log.append(f"click: {why}")

    def type_ja(self, selector: str, text: str, romaji: str, why: str) -> None:
        """Click into the box, type in romaji, Space converts, Enter commits the IME."""
        self.click(selector, why)
        self.page.fill(selector, text)
        self.keys += len(romaji) + 2
        self.log.append(f"keys: {len(romaji) + 2} ({romaji} + 変換 + 確定) for {text}")

    def accept_next_dialog(self, why: str) -> None:
        self.page.once("dialog", lambda d: d.accept())
        self.clicks += 1
        self.log.append(f"click: {why}")


def scripted_completion(browser, base_url: str, launch_url: str, clerk, physician, devices) -> dict:
    out = {}
    # The clerk opens the case from the EMR button and completes what the EMR could not fill.
    with open_page(browser) as page:
        page.goto(launch_url)  # the click on the EMR's button
        sign_in(page, clerk, devices[clerk.username])  # not counted
        page.wait_for_url("**/notifications/*/")
        page.wait_for_load_state("networkidle")
        clerk_hands = Counted(page)
        clerk_hands.log = ["(EMR button, in the EMR: not a click in the form)"]
        clerk_hands.click("button.copy-from[data-copy-to='f-patient-residence_address']", "居所は住所と同じ")
        clerk_hands.type_ja("[name='patient.occupation']", "会社員", "kaishainn", "職業の欄")
        form_url = page.url
        clerk_hands.click("button[name=action][value=handoff]", "医師確認へ回す")
        page.wait_for_selector("text=医師確認待ちにしました")
        out["clerk"] = {"clicks": clerk_hands.clicks, "keys": clerk_hands.keys, "steps": clerk_hands.log}
    # The physician opens the draft from the EMR button too, checks the medical items and confirms.
    with open_page(browser) as page:
        page.goto(form_url)  # the click on the EMR's button (the case is open: it opens the same draft)
        sign_in(page, physician, devices[physician.username])  # not counted
        page.wait_for_url("**/notifications/*/")
        page.wait_for_load_state("networkidle")
        doctor = Counted(page)
        doctor.log = ["(EMR button, in the EMR: not a click in the form)"]
        doctor.click("#emr-suggestions button[name=accept]", "類型：電子カルテの候補「患者（確定例）」を採用")
        page.wait_for_load_state("networkidle")
        doctor.click("[name='clinical.symptoms'][value='fever']", "症状：発熱")
        doctor.click("button[name=action][value=confirm]", "確定する（送信内容の確認へ）")
        page.wait_for_url("**/review/")
        # the review step: every empty medical-judgement item needs an explicit answer (here: all 不明, at once)
        doctor.click("[name=answer_rest]", "確認画面：未入力の医師確認項目はすべて不明")
        if page.locator("[name=change_physician]").count():
            doctor.click("[name=change_physician]", "確認画面：届出の医師を自分に変更")
        doctor.click("#final-confirm", "確定してHER-SYSへ送信")
        page.wait_for_url("**/status/")
        page.wait_for_selector("#status-label:has-text('受理')", timeout=60000)
        out["physician"] = {"clicks": doctor.clicks, "keys": doctor.keys, "steps": doctor.log,
                            "receipt": page.inner_text("#receipt-id")}
    out["clicks"] = out["clerk"]["clicks"] + out["physician"]["clicks"]  # in the form (the target)
    out["clicks_with_emr_button"] = out["clicks"] + 2  # each person also clicked the EMR's button once
    out["keys"] = out["clerk"]["keys"] + out["physician"]["keys"]
    return out


def test_effort_of_a_filing(live_server, settings, hospital, clerk, physician, published, celery_worker_factory,
                            sandbox):
    settings.PUBLIC_BASE_URL = live_server.url
    published(VERSION)
    rows = [open_form_effort(hospital, clerk, patient, fmt) for patient in sample_patients() for fmt in FORMATS]
    assert len(rows) == 2 * len(sample_patients()) >= 60
    celery_worker_factory()
    launch_url = push_extract(Client(), TYPICAL, "ss-mix2").json()["launch_url"]
    devices = {u.username: TOTPDevice.objects.get(user=u) for u in (clerk, physician)}
    with chromium() as browser:
        done = scripted_completion(browser, live_server.url, launch_url, clerk, physician, devices)
    from assist_portal.notifications.models import Notification

    assert Notification.objects.get(patient_ref=TYPICAL).status == "confirmed"
    assert done["physician"]["receipt"].startswith("HS-")

    typical = next(r for r in rows if r["patient"] == TYPICAL and r["format"] == "ss-mix2")
    mean_pct = round(statistics.mean(r["prefilled_pct"] for r in rows))
    result = {
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"), "form_version": VERSION,
        "patients": rows, "typical": {"patient": TYPICAL, "format": "ss-mix2", **typical, **done},
        "summary": {"prefilled_pct_mean": mean_pct,
                    "prefilled_pct_median": round(statistics.median(r["prefilled_pct"] for r in rows)),
                    "typical_prefilled_pct": typical["prefilled_pct"],
                    "clicks": done["clicks"], "clicks_with_emr_button": done["clicks_with_emr_button"],
                    "keys": done["keys"]},
        "targets": {"clicks_max": 10, "keys_max": 40, "prefilled_pct_min": 45},
        "notes": "Sign-in excluded. Japanese typed as romaji + Space (convert) + Enter (commit). clicks: in the "
                 "form (the clerk's and the physician's, review step included); clicks_with_emr_button adds the "
                 "one click on the EMR's button each person made to open the case.",
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")

    print("\n患者ID      形式     表示 既入力 候補 要入力 既入力率")
    for r in rows:
        print(f"{r['patient']}  {r['format']:<8} {r['shown']:>4} {r['prefilled']:>6} {r['suggested']:>4} "
              f"{r['to_type']:>6} {r['prefilled_pct']:>7.1f}%")
    for who in ("clerk", "physician"):
        print(f"{who}: clicks={done[who]['clicks']} keys={done[who]['keys']} — " + "; ".join(done[who]["steps"]))
    print(f"effort: prefilled={mean_pct}% clicks={done['clicks']} keys={done['keys']} "
          f"(clicks with the EMR button: {done['clicks_with_emr_button']})")

    # The targets, in the form: the review step of issue 8 is inside them (its two deliberate clicks: the
    # empty medical items answered 不明, the form's physician taken over by the one confirming).
    assert done["clicks"] <= 10 and done["keys"] <= 40, done
    assert typical["prefilled_pct"] >= 45, typical
