"""The worklist per hospital: states computed in SQL, filters, counts in the navigation, search over values encrypted
at rest through a keyed index, hand-off and return, a notification started without an EMR extract."""
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from assist_portal.audit.models import AuditEvent
from assist_portal.delivery.models import Delivery
from assist_portal.notifications import search
from assist_portal.notifications import services as nsvc
from assist_portal.notifications.models import Notification, SearchToken
from tests.conftest import DEMO_SAMPLES
from tests.portal.test_workflow import filled_values, form_post

pytestmark = pytest.mark.django_db
LIST = reverse("notifications:list")


def open_patient(hospital, user, patient="1100000002"):
    data = json.loads((DEMO_SAMPLES / "fhir" / f"{patient}.json").read_text(encoding="utf-8"))
    extract = nsvc.extract_receive(hospital, nsvc.ExtractPayload(format="fhir", patient_ref=patient, data=data))
    return nsvc.notification_open_from_extract(extract, user)


def confirm(notification, physician, capture):
    with capture(execute=False):
        row, evaluation, delivery = nsvc.notification_confirm(
            notification, physician, dict(notification.values, **{"report.diagnosis_class": "confirmed_patient"}),
            notification.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    return row, delivery


def rows_of(response) -> dict[str, str]:
    """patient ID → state of each worklist row."""
    html = response.content.decode()
    return dict((pid, state) for state, pid in re.findall(r'<tr data-state="(\w+)">.*?患者ID ([^<]+)', html, re.S))


def nav_count(response, state) -> int:
    m = re.search(rf'class="nav-count state-{state}" data-state="{state}">[^<]*<span class="count">(\d+)<',
                  response.content.decode())
    return int(m.group(1))


@pytest.fixture
def cases(hospital, physician, clerk, published, django_capture_on_commit_callbacks):
    """Five patients in five states: 入力中, 医師確認待ち, 送信待ち, 受理, 要対応 (rejected)."""
    published("2021-03")
    drafting = open_patient(hospital, clerk, "1100000002")
    handed = open_patient(hospital, clerk, "1200000030")
    nsvc.notification_handoff(handed, clerk, dict(handed.values), handed.lock_version, physician_id=physician.pk,
                              note="ICUの有無を確認してください")
    queued = confirm(open_patient(hospital, physician, "1700000014"), physician, django_capture_on_commit_callbacks)
    accepted = confirm(open_patient(hospital, physician, "1700000021"), physician, django_capture_on_commit_callbacks)
    Delivery.objects.filter(pk=accepted[1].pk).update(status=Delivery.Status.ACCEPTED, receipt_id="HS-000123")
    rejected = confirm(open_patient(hospital, physician, "2200000007"), physician, django_capture_on_commit_callbacks)
    Delivery.objects.filter(pk=rejected[1].pk).update(status=Delivery.Status.REJECTED, last_error="項目不備")
    return {"input": drafting, "review": handed, "sending": queued[0], "accepted": accepted[0],
            "attention": rejected[0]}


def test_each_case_shows_its_state_and_the_navigation_counts_them(client, cases, clerk, login):
    login(client, clerk)
    page = client.get(LIST + "?state=")
    assert rows_of(page) == {n.patient_ref: state for state, n in cases.items()}
    for state in cases:
        assert nav_count(page, state) == 1
        filtered = client.get(LIST + f"?state={state}")
        assert rows_of(filtered) == {cases[state].patient_ref: state}
    html = page.content.decode()
    assert "HS-000123" in html  # the receipt column
    assert "山田　一郎先生宛て" in html  # handed to a named physician


def test_each_role_lands_on_its_own_queue(client, cases, clerk, physician, login):
    login(client, physician)
    assert rows_of(client.get(LIST)) == {cases["review"].patient_ref: "review"}
    login(client, clerk)
    assert rows_of(client.get(LIST)) == {cases["input"].patient_ref: "input"}


def test_not_accepted_in_time_and_dead_letters_need_attention(client, cases, clerk, login, settings):
    settings.ACCEPTANCE_ALERT_MINUTES = 30
    login(client, clerk)
    assert rows_of(client.get(LIST + "?state=attention")) == {cases["attention"].patient_ref: "attention"}
    revision = cases["sending"].revisions.get()
    Delivery.objects.filter(pk=revision.delivery_id).update(created_at=timezone.now() - timedelta(minutes=31))
    page = client.get(LIST + "?state=attention")
    assert set(rows_of(page)) == {cases["attention"].patient_ref, cases["sending"].patient_ref}
    assert "30分以上受理されない" in page.content.decode()
    Delivery.objects.filter(pk=revision.delivery_id).update(status=Delivery.Status.DEAD)
    assert "送信停止" in client.get(LIST + "?state=attention").content.decode()


def test_attention_banner_reaches_every_user_of_the_hospital_and_no_other(client, cases, clerk, physician,
                                                                          make_user, other_hospital, login):
    for user in (clerk, physician):
        login(client, user)
        page = client.get(reverse("notifications:form", args=[cases["input"].uuid]))
        assert 'id="attention-banner"' in page.content.decode() and "要対応の届出が1件あります" in page.content.decode()
    login(client, make_user("b_clerk", "clerk", other_hospital))
    page = client.get(LIST)
    assert 'id="attention-banner"' not in page.content.decode()
    assert nav_count(page, "attention") == 0 and rows_of(client.get(LIST + "?state=")) == {}


def test_mine_filter(client, cases, clerk, physician, make_user, hospital, login):
    other_clerk = make_user("clerk_ito", "clerk", hospital)
    login(client, other_clerk)
    assert rows_of(client.get(LIST + "?state=&mine=1")) == {}
    login(client, clerk)
    assert set(rows_of(client.get(LIST + "?state=&mine=1"))) == {cases["input"].patient_ref,
                                                                 cases["review"].patient_ref}
    login(client, physician)
    assert cases["review"].patient_ref in rows_of(client.get(LIST + "?state=review&mine=1"))
    other_doctor = make_user("dr_kato", "physician", hospital)
    login(client, other_doctor)
    assert rows_of(client.get(LIST + "?state=review&mine=1")) == {}  # handed to 山田, not to 加藤


def test_pagination(client, cases, clerk, login, settings):
    settings.WORKLIST_PAGE_SIZE = 2
    login(client, clerk)
    seen = {}
    for number in (1, 2, 3):
        page = client.get(LIST + f"?state=&page={number}")
        assert f"{number} / 3 ページ（5件）" in page.content.decode()
        seen.update(rows_of(page))
    assert len(seen) == 5


# ---- search over values encrypted at rest ---------------------------------------------------------------------

@pytest.mark.parametrize("query", ["高橋", "高橋 健", "高橋　健", "健", "タカハシ", "たかはし", "ﾀｶﾊｼ ｹﾝ", "1100",
                                   "1942-07-21", "S17.7.21", "昭和17年7月21日", "19420721"])
def test_search_finds_a_patient_by_name_kana_id_and_birth_date(client, cases, clerk, login, query):
    login(client, clerk)
    assert set(rows_of(client.get(LIST, {"state": "", "q": query}))) == {"1100000002"}


def test_search_does_not_match_what_is_not_a_prefix_or_another_hospital(client, cases, clerk, login, make_user,
                                                                        other_hospital):
    login(client, clerk)
    for query in ("橋", "カハシ", "1942-07-22", "高橋健太"):
        assert rows_of(client.get(LIST, {"state": "", "q": query})) == {}
    login(client, make_user("b_clerk", "clerk", other_hospital))
    assert rows_of(client.get(LIST, {"state": "", "q": "高橋"})) == {}


def test_search_values_are_encrypted_and_the_index_reveals_nothing_without_the_key(cases, hospital, settings):
    with connection.cursor() as cursor:
        cursor.execute("SELECT values::text, display_name FROM notifications_notification WHERE patient_ref = %s",
                       ["1100000002"])
        values_raw, name_raw = cursor.fetchone()
        cursor.execute("SELECT token FROM notifications_searchtoken")
        stored = {r[0] for r in cursor.fetchall()}
    assert "高橋" not in values_raw and "高橋" not in name_raw  # at rest: Fernet tokens only
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for t in stored)
    import hashlib
    import hmac

    name = search.normalise("高橋")
    # with the key the index answers; without it (a guessed key, the Fernet key, a plain hash) nothing matches
    assert search.token(hospital.id, search.TEXT, name) in stored
    for key in (b"guess", settings.PATIENT_DATA_KEYS[0].encode(), settings.SECRET_KEY.encode()):
        guessed = search.index_tokens(hospital.id, "1100000002", {"patient.name": "高橋 健",
                                                                  "patient.name_kana": "タカハシ ケン",
                                                                  "patient.birth_date": "1942-07-21"}, key=key)
        assert not guessed & stored
    plain = {hashlib.sha256(f"{hospital.id}|t|{name}".encode()).hexdigest(),
             hashlib.sha256(name.encode()).hexdigest(), hmac.new(b"", name.encode(), hashlib.sha256).hexdigest()}
    assert not plain & stored
    assert settings.SEARCH_INDEX_KEY not in settings.PATIENT_DATA_KEYS


def test_search_reads_no_values(client, cases, clerk, login, django_assert_max_num_queries, monkeypatch):
    """A search is an indexed lookup: the values are never decrypted for it (not one row)."""
    from assist_portal import crypto

    login(client, clerk)
    client.get(LIST)  # warm the session
    decrypted = []
    original = crypto.decrypt_json
    monkeypatch.setattr(crypto, "decrypt_json", lambda token: decrypted.append(1) or original(token))
    with django_assert_max_num_queries(14):
        page = client.get(LIST, {"state": "", "q": "たかはし"})
    assert set(rows_of(page)) == {"1100000002"}
    assert len(decrypted) == 1  # the one row shown: its display name (and nothing else)


def test_search_index_follows_edits(client, cases, clerk, login):
    n = cases["input"]
    login(client, clerk)
    values = filled_values(n)
    values["patient.name"] = "中村 さくら"
    assert client.post(reverse("notifications:form", args=[n.uuid]), form_post(n, values)).status_code == 302
    assert rows_of(client.get(LIST, {"state": "", "q": "高橋"})) == {}
    assert set(rows_of(client.get(LIST, {"state": "", "q": "中村"}))) == {n.patient_ref}


# ---- hand-off, return, audit of changed fields --------------------------------------------------------------------

def test_clerk_hands_off_and_physician_returns_with_notes(client, hospital, clerk, physician, published, login):
    published("2021-03")
    n = open_patient(hospital, clerk)
    url = reverse("notifications:form", args=[n.uuid])
    login(client, clerk)
    values = filled_values(n)
    values["patient.occupation"] = "会社員"
    data = form_post(n, values, "handoff")
    data.update({"handoff_physician": str(physician.pk), "handoff_note": "職業を確認済み。ICUの有無をお願いします"})
    assert client.post(url, data).status_code == 302
    n.refresh_from_db()
    assert n.review_requested_by == clerk and n.review_physician == physician
    assert n.values["patient.occupation"] == "会社員"  # the hand-off saves what was typed
    event = AuditEvent.objects.filter(action="notification.handoff").get()
    assert event.detail["physician"] == physician.username and "patient.occupation" in event.detail["changed"]
    assert "会社員" not in json.dumps(event.detail, ensure_ascii=False)
    assert "ICU" not in json.dumps(event.detail, ensure_ascii=False)  # the note is not in the audit log
    with connection.cursor() as cursor:
        cursor.execute("SELECT review_note FROM notifications_notification WHERE id = %s", [n.pk])
        assert "ICU" not in cursor.fetchone()[0]  # encrypted at rest

    login(client, physician)
    page = client.get(LIST)
    assert rows_of(page) == {n.patient_ref: "review"}
    form = client.get(url).content.decode()
    assert "ICUの有無をお願いします" in form and 'value="return"' in form
    data = form_post(n, filled_values(n), "return")
    data["return_note"] = "発病年月日が空欄です"
    assert client.post(url, data).status_code == 302
    n.refresh_from_db()
    assert n.review_requested_at is None and n.returned_by == physician
    assert AuditEvent.objects.filter(action="notification.return").count() == 1
    login(client, clerk)
    assert rows_of(client.get(LIST)) == {n.patient_ref: "input"}
    assert "発病年月日が空欄です" in client.get(url).content.decode()


def test_clerk_cannot_return_and_a_foreign_physician_cannot_be_picked(client, hospital, clerk, physician, published,
                                                                       login, make_user, other_hospital):
    published("2021-03")
    n = open_patient(hospital, clerk)
    url = reverse("notifications:form", args=[n.uuid])
    login(client, clerk)
    stranger = make_user("b_doc", "physician", other_hospital)
    data = form_post(n, filled_values(n), "handoff")
    data["handoff_physician"] = str(stranger.pk)
    response = client.post(url, data)
    assert response.status_code == 400 and "依頼先の医師が見つかりません" in response.content.decode()
    n.refresh_from_db()
    assert n.review_requested_at is None
    data["handoff_physician"] = ""
    assert client.post(url, data).status_code == 302
    n.refresh_from_db()
    assert client.post(url, form_post(n, filled_values(n), "return")).status_code == 403


def test_audit_records_which_fields_changed_never_values(client, hospital, physician, published, login,
                                                         django_capture_on_commit_callbacks):
    published("2021-03")
    n = open_patient(hospital, physician)
    login(client, physician)
    values = filled_values(n)
    values["patient.occupation"] = "教員"
    client.post(reverse("notifications:form", args=[n.uuid]), form_post(n, values))
    save = AuditEvent.objects.filter(action="notification.save").latest("id")
    assert "patient.occupation" in save.detail["changed"] and "report.diagnosis_class" in save.detail["changed"]
    assert "patient.name" not in save.detail["changed"]
    assert "教員" not in json.dumps(save.detail, ensure_ascii=False)
    n.refresh_from_db()
    confirm(n, physician, django_capture_on_commit_callbacks)
    event = AuditEvent.objects.filter(action="notification.confirm").latest("id")
    assert "patient.occupation" in event.detail["changed_since_last_revision"]
    assert "教員" not in json.dumps(event.detail, ensure_ascii=False)


# ---- without an EMR extract -------------------------------------------------------------------------------------

def test_a_notification_can_be_started_by_hand_and_typed_values_are_input(client, hospital, clerk, published, login):
    published("2021-03")
    login(client, clerk)
    page = client.get(LIST)
    assert "電子カルテを使わずに届出を作成" in page.content.decode()
    response = client.post(reverse("notifications:start"), {"patient_id": "P-777"})
    assert response.status_code == 302
    n = Notification.objects.get(patient_ref="P-777")
    assert n.extract is None and n.created_by == clerk
    assert n.values["report.facility_name"] == "さくら総合病院"
    assert not any(p.startswith(("fhir", "ss-mix2", "csv")) for p in n.provenance.values())
    values = {"patient.name": "手入力 太郎", "patient.name_kana": "テニュウリョク タロウ", "patient.sex": "male",
              "patient.birth_date": "1980-04-01"}
    assert client.post(reverse("notifications:form", args=[n.uuid]), form_post(n, values)).status_code == 302
    n.refresh_from_db()
    assert all(n.provenance[k] == f"typed:{clerk.username}" for k in values)
    assert set(rows_of(client.get(LIST, {"state": "", "q": "てにゅうりょく"}))) == {"P-777"}
    # the same patient again opens the same draft, never a second one
    client.post(reverse("notifications:start"), {"patient_id": "P-777"})
    assert Notification.objects.filter(patient_ref="P-777").count() == 1
    assert AuditEvent.objects.filter(action="notification.start_manual").count() == 2


def test_manual_start_refuses_bad_patient_ids(client, clerk, published, login):
    published("2021-03")
    login(client, clerk)
    for bad in ("", "x" * 65, "a\x00b"):
        page = client.post(reverse("notifications:start"), {"patient_id": bad}, follow=True)
        assert "患者ID" in page.content.decode()
    assert Notification.objects.count() == 0


def test_worklist_queries_do_not_grow_with_rows(client, cases, clerk, login, django_assert_max_num_queries):
    login(client, clerk)
    with django_assert_max_num_queries(14):
        page = client.get(LIST + "?state=")
    assert len(rows_of(page)) == 5
    assert SearchToken.objects.filter(notification=cases["input"]).exists()


def test_confirming_keeps_the_search_index_without_asking_for_it_when_no_indexed_item_changed(
        client, hospital, physician, clerk, published, login, django_capture_on_commit_callbacks):
    """Issue 13: a confirmation reads the search tokens only when it changes the name, kana or birth date; the
    index still follows a change made at confirmation."""
    from django.test.utils import CaptureQueriesContext

    published("2021-03")
    unchanged = open_patient(hospital, physician, "1700000014")
    with CaptureQueriesContext(connection) as queries:
        confirm(unchanged, physician, django_capture_on_commit_callbacks)
    assert not [q for q in queries.captured_queries if "notifications_searchtoken" in q["sql"]]
    renamed = open_patient(hospital, physician, "1700000021")
    with django_capture_on_commit_callbacks(execute=False):
        _, evaluation, delivery = nsvc.notification_confirm(
            renamed, physician, dict(renamed.values, **{"report.diagnosis_class": "confirmed_patient",
                                                        "patient.name": "見本　改名"}), renamed.lock_version)
    assert delivery is not None, [m.text_ja for m in evaluation.errors]
    login(client, clerk)
    assert set(rows_of(client.get(LIST, {"state": "", "q": "改名"}))) == {"1700000021"}
    assert set(rows_of(client.get(LIST, {"state": "", "q": "1700000014"}))) == {"1700000014"}


def test_search_reindex_after_a_key_change(client, clerk, login, settings, hospital, published):
    """`manage.py search_reindex`: after SEARCH_INDEX_KEY changes, the old tokens find nothing until the index is
    rebuilt with the new key."""
    from io import StringIO

    from django.core.management import call_command

    from assist_portal.notifications import services

    published("2021-03")
    row = services.notification_start_manual(clerk, patient_ref="P-REINDEX")
    row.values = {**row.values, "patient.name": "検索　花子"}
    row.save()
    services.search_index_update(row)
    login(client, clerk)
    url = reverse("notifications:list") + "?state=&q=検索"
    assert "P-REINDEX" in client.get(url).content.decode()
    settings.SEARCH_INDEX_KEY = "another key"
    assert "P-REINDEX" not in client.get(url).content.decode()
    out = StringIO()
    call_command("search_reindex", stdout=out)
    assert "作り直しました" in out.getvalue()
    assert "P-REINDEX" in client.get(url).content.decode()
