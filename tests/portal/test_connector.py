"""The hospital connector: only notification items leave the hospital by default (a patient with many unrelated
diagnoses and results sends none of them); the API validates items against the vocabulary and refuses a raw push
from a hospital that has not switched it on; `launch` opens the form, `watch` writes confirmed notifications back
into SS-MIX2 extended storage with a local queue, `print` renders the paper form without the data centre; the
built, installable connector runs."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from connector.__main__ import main
from connector.config import Config
from connector.extract import ITEMS_FIELDS
from tests.conftest import DEMO_SAMPLES
from tests.portal.conftest import push_extract

PATIENT = "1100000002"
UNRELATED = ["白内障", "H25.9", "H259", "胃潰瘍", "K25.9", "K259", "HbA1c", "7.35", "総コレステロール", "アムロジピン",
             "ペニシリン", "近視", "H521", "CRP", "LDH", "2.41"]


def many_unrelated_fhir(folder: Path) -> Path:
    """Patient 1100000002's bundle plus a history of unrelated diagnoses, results, drugs and an allergy."""
    bundle = json.loads((DEMO_SAMPLES / "fhir" / f"{PATIENT}.json").read_text(encoding="utf-8"))
    subject = {"reference": f"Patient/{PATIENT}"}
    extra = [
        {"resourceType": "Condition", "id": "x1", "subject": subject, "recordedDate": "2015-03-02",
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "H25.9", "display": "老人性白内障"}],
                  "text": "老人性白内障"}},
        {"resourceType": "Condition", "id": "x2", "subject": subject, "recordedDate": "2018-06-11",
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "K25.9", "display": "胃潰瘍"}],
                  "text": "胃潰瘍"}},
        {"resourceType": "Observation", "id": "x3", "status": "final", "subject": subject,
         "effectiveDateTime": "2020-11-02",
         "code": {"coding": [{"system": "urn:local:lab", "code": "L3001", "display": "HbA1c"}]},
         "valueQuantity": {"value": 7.35, "unit": "%"}},
        {"resourceType": "Observation", "id": "x4", "status": "final", "subject": subject,
         "effectiveDateTime": "2020-11-02",
         "code": {"coding": [{"system": "urn:local:lab", "code": "L3002", "display": "総コレステロール"}]},
         "valueQuantity": {"value": 221, "unit": "mg/dL"}},
        {"resourceType": "MedicationRequest", "id": "x5", "status": "active", "subject": subject, "intent": "order",
         "medicationCodeableConcept": {"text": "アムロジピン錠5mg"}},
        {"resourceType": "AllergyIntolerance", "id": "x6", "patient": subject, "code": {"text": "ペニシリン"}},
    ]
    bundle["entry"] += [{"resource": r} for r in extra]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PATIENT}.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    return path


def many_unrelated_ssmix2(root: Path) -> Path:
    """Patient 1100000002's SS-MIX2 folder (already holding 近視, CRP, LDH) plus unrelated diagnoses and results."""
    folder = root / PATIENT[:3] / PATIENT[3:6] / PATIENT
    shutil.copytree(DEMO_SAMPLES / "ss-mix2" / PATIENT[:3] / PATIENT[3:6] / PATIENT, folder)
    pid = ("PID|0001||1100000002^^^^PI||高橋^健^^^^^L^I~タカハシ^ケン^^^^^L^P||19420721|M|||"
           "^^愛知県名古屋市中区栄３−５−１^^4600008^JPN^H")
    ppr = "\r".join([
        "MSH|^~\\&|HIS|H0001|SS-MIX2|H0001|20180611110000||PPR^ZD1^PPR_ZD1|M1|P|2.5||||||~ISO IR87||ISO 2022-1994",
        pid, "PRB|AD|20180611110000|K259^胃潰瘍^I10|3|||20180611", "PRB|AD|20150302110000|H259^老人性白内障^I10|4|||20150302",
    ]) + "\r"
    oul = "\r".join([
        "MSH|^~\\&|HIS|H0001|SS-MIX2|H0001|20201102160100||OUL^R22^OUL_R22|M2|P|2.5||||||~ISO IR87||ISO 2022-1994",
        pid, "PV1|0001|O", "SPM|1|||B01^血液^99L|||||||||||||20201102100500",
        "OBR|1|O00901|F00901|L3001^HbA1c^99L||20201102100500|20201102100500||||||||||||||20201102160100||LAB|F",
        "OBX|1|NM|L3001^HbA1c^99L||7.35|%|||||F|||20201102160100",
        "OBX|2|NM|L3002^総コレステロール^99L||221|mg/dL|||||F|||20201102160100",
    ]) + "\r"
    for day, kind, name, text in (
            ("20180611", "PPR-01", f"{PATIENT}_20180611_PPR-01_P0009_20180611110000000_01_1", ppr),
            ("20201102", "OML-11", f"{PATIENT}_20201102_OML-11_O00901_20201102160100000_01_1", oul)):
        (folder / day / kind).mkdir(parents=True, exist_ok=True)
        (folder / day / kind / name).write_bytes(text.encode("iso2022_jp"))
    return folder


def capture_push(tmp_path, fmt: str, source: Path, monkeypatch) -> dict:
    """Run `launch` against a stand-in data centre and return exactly the body that left the hospital."""
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/mapping":
            return httpx.Response(200, json={"local_codes": json.loads(
                (DEMO_SAMPLES / "local-codes.json").read_text(encoding="utf-8")), "csv_profile": None})
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"launch_url": "https://dc.example/launch/x/", "warnings": []})

    import connector.client as client_mod

    original = client_mod.DataCentre.__init__
    monkeypatch.setattr(client_mod.DataCentre, "__init__",
                        lambda self, config, transport=None, sleep=None: original(
                            self, config, transport=httpx.MockTransport(handler), sleep=lambda s: None))
    monkeypatch.setattr("webbrowser.open", lambda url: True)
    config = tmp_path / "connector.toml"
    key = tmp_path / "key"
    key.write_text("hk_test")
    where = f'ssmix2_root = "{source}"' if fmt == "ss-mix2" else f'fhir_dir = "{source}"'
    config.write_text(f'url = "https://dc.example"\nkey_file = "key"\nformat = "{fmt}"\n{where}\n'
                      f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    assert main(["--config", str(config), "launch", "--patient", PATIENT]) == 0
    (body,) = [b for b in sent]
    return body


@pytest.mark.security
@pytest.mark.parametrize("fmt", ["fhir", "ss-mix2"])
def test_the_default_push_carries_nothing_beyond_the_notification_items(tmp_path, monkeypatch, fmt):
    from assist_portal.api.items import annotations_problems, items_problems, vocabulary_items

    source = many_unrelated_fhir(tmp_path / "fhir") if fmt == "fhir" else many_unrelated_ssmix2(tmp_path / "ss")
    body = capture_push(tmp_path, fmt, tmp_path / "ss" if fmt == "ss-mix2" else source.parent, monkeypatch)
    assert tuple(body) == ITEMS_FIELDS and body["format"] == "items" and body["source_format"] == fmt
    assert set(body["items"]) - {"tests"} <= set(vocabulary_items())
    assert not items_problems(body["items"]) and not annotations_problems(
        body["provenance"], body["suggestions"], body["warnings"])
    assert body["items"]["patient.birth_date"] == "1942-07-21" and body["items"]["tests"]  # the notification items
    # The unrelated history changes nothing of what is sent: exactly what the plain sample yields.
    from connector.extract import read_source, run_mapping

    plain = DEMO_SAMPLES / ("fhir" if fmt == "fhir" else "ss-mix2")
    plain = plain / f"{PATIENT}.json" if fmt == "fhir" else plain / PATIENT[:3] / PATIENT[3:6] / PATIENT
    codes = json.loads((DEMO_SAMPLES / "local-codes.json").read_text(encoding="utf-8"))
    baseline = run_mapping(fmt, read_source(fmt, plain), PATIENT, codes, None)
    for key in ("items", "provenance", "suggestions", "warnings"):
        assert body[key] == baseline.get(key, {} if key != "warnings" else []), key
    text = json.dumps({k: v for k, v in body.items() if k != "source_sha256"}, ensure_ascii=False)
    leaked = [s for s in UNRELATED if s in text]
    assert not leaked, f"unrelated chart content left the hospital: {leaked}"
    assert len(body["source_sha256"]) == 64  # what was read is identified by its hash only


@pytest.mark.django_db
@pytest.mark.security
def test_the_api_refuses_a_raw_push_unless_the_hospital_enabled_it(client, hospital, hospital_admin, published,
                                                                    login):
    from assist_portal.audit.models import AuditEvent
    from assist_portal.notifications.models import Extract

    published("2021-03")
    refused = push_extract(Client(), PATIENT, raw=True)
    assert refused.status_code == 403 and "項目だけ" in refused.json()["detail"]
    assert AuditEvent.objects.filter(action="extract.refused", hospital_code="H0001").exists()
    assert not Extract.objects.exists()
    login(client, hospital_admin)
    page = client.get(reverse("hospitaladmin:settings")).content.decode()
    assert "届出の項目だけ" in page
    assert client.post(reverse("hospitaladmin:raw-push"), {"enabled": "1"}).status_code == 302
    assert push_extract(Client(), PATIENT, raw=True).status_code == 201
    assert client.post(reverse("hospitaladmin:raw-push"), {"enabled": "0"}).status_code == 302
    assert push_extract(Client(), PATIENT, raw=True).status_code == 403
    assert [e.detail["enabled"] for e in AuditEvent.objects.filter(action="hospital.raw_push").order_by("id")] == \
        [True, False]
    # The default push works either way, and says so in the audit log.
    assert push_extract(Client(), PATIENT).status_code == 201
    assert sorted(AuditEvent.objects.filter(action="extract.receive").values_list("detail__pushed", flat=True)) == \
        ["items", "raw"]


@pytest.mark.django_db
def test_only_the_hospitals_own_administrator_switches_raw_pushes(client, hospital, other_hospital, central_admin,
                                                                 make_user, login):
    from assist_portal.accounts.admin_services import AccountError, hospital_raw_push_set

    for user in (central_admin, make_user("hadmin_b", "hospital_admin", other_hospital),
                 make_user("dr_x", "physician", hospital)):
        with pytest.raises(AccountError):
            hospital_raw_push_set(hospital, enabled=True, by=user)
    hospital.refresh_from_db()
    assert not hospital.raw_push_enabled


def _items_body(**changes):
    body = {"patient_id": PATIENT, "format": "items", "source_format": "fhir", "source_sha256": "a" * 64,
            "items": {"patient.name": "見本　太郎", "patient.sex": "male"}, "provenance": {}, "suggestions": {},
            "warnings": []}
    body.update(changes)
    return body


@pytest.mark.django_db
@pytest.mark.security
@pytest.mark.parametrize("changes,field", [
    ({"items": {"patient.blood_type": "A"}}, "patient.blood_type"),
    ({"items": {"history.diagnoses": ["白内障"]}}, "history.diagnoses"),
    ({"items": {"tests": [{"method": "pcr", "hba1c": "7.35"}]}}, "hba1c"),
    ({"items": {"patient.sex": "unknown-code"}}, "patient.sex"),
    ({"items": {"patient.birth_date": "1942-02-30"}}, "patient.birth_date"),
    ({"items": {"risk.factors": ["cataract"]}}, "risk.factors"),
    ({"items": {"tests.method": "pcr"}}, "tests.method"),
    ({"provenance": {"chart.notes": "x"}}, "chart.notes"),
    ({"suggestions": {"patient.allergy": {"value": "penicillin"}}}, "patient.allergy"),
    ({"warnings": ["x" * 600]}, "warnings"),
    ({"bundle": {"resourceType": "Bundle"}}, "bundle"),
    ({"source_sha256": "not-a-hash"}, "source_sha256"),
    ({"source_format": None}, "source_format"),
])
def test_an_items_push_is_checked_against_the_vocabulary(client, hospital, published, changes, field):
    from assist_portal.notifications.models import Extract

    published("2021-03")
    body = {k: v for k, v in _items_body(**changes).items() if v is not None}
    response = client.post("/api/v1/extracts", data=json.dumps(body, ensure_ascii=False),
                           content_type="application/json", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert "入力内容が正しくありません" in answer["detail"] and field in json.dumps(answer, ensure_ascii=False)
    assert not Extract.objects.exists()
    ok = client.post("/api/v1/extracts", data=json.dumps(_items_body(), ensure_ascii=False),
                     content_type="application/json", HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert ok.status_code == 201 and Extract.objects.get().items == _items_body()["items"]


def _config(tmp_path, url, *, key="key-h0001", extra="") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "key").write_text(key + "\n")
    config = tmp_path / "connector.toml"
    config.write_text(
        f'url = "{url}"\nkey_file = "key"\nformat = "fhir"\nfhir_dir = "{DEMO_SAMPLES / "fhir"}"\n'
        f'local_codes = "{DEMO_SAMPLES / "local-codes.json"}"\nextended_root = "{tmp_path / "extended"}"\n'
        f'out_dir = "{tmp_path / "chart"}"\nstate_dir = "{tmp_path / "state"}"\n{extra}'
        '[facility]\nname = "さくら総合病院"\naddress = "東京都千代田区霞が関１−２−２"\nphone = "03-5253-1111"\n',
        encoding="utf-8")
    return config


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_launch_then_watch_writes_back_into_extended_storage(live_server, settings, hospital, physician, published,
                                                            tmp_path, monkeypatch, capsys,
                                                            django_capture_on_commit_callbacks):
    from assist_portal.audit.models import AuditEvent
    from assist_portal.notifications import services
    from assist_portal.notifications.models import Extract

    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    config = _config(tmp_path, live_server.url)
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    assert main(["--config", str(config), "launch", "--patient", PATIENT]) == 0
    assert len(opened) == 1 and opened[0].startswith(live_server.url + "/launch/")
    assert AuditEvent.objects.get(action="extract.receive").detail["pushed"] == "items"
    extract = Extract.objects.get()
    assert extract.items["patient.birth_date"] == "1942-07-21"
    # Nothing confirmed yet: watch writes nothing.
    assert main(["--config", str(config), "watch", "--once"]) == 0
    assert not (tmp_path / "extended").exists()
    n = services.notification_open_from_extract(extract, physician)
    with django_capture_on_commit_callbacks(execute=False):
        services.notification_confirm(n, physician, dict(n.values, **{"report.diagnosis_class": "confirmed_patient"}),
                                      n.lock_version)
    n.refresh_from_db()
    assert main(["--config", str(config), "watch", "--once"]) == 0
    day = n.updated_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y%m%d")  # a Japanese date, at any hour
    folder = tmp_path / "extended" / PATIENT[:3] / PATIENT[3:6] / PATIENT / day / "HERSYS"
    stem = f"{PATIENT}_{day}_HERSYS_{n.uuid}_r01"
    document = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
    assert document["resourceType"] == "Bundle" and (folder / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    chart = tmp_path / "chart" / PATIENT
    assert sorted(p.name for p in chart.iterdir()) == [f"{PATIENT}_{n.uuid}_r01.json", f"{PATIENT}_{n.uuid}_r01.pdf"]
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["queue"] == [] and state["since"]
    # The data centre unreachable: launch says so (and how to fax), exit code 2.
    dead = _config(tmp_path / "dead", "http://127.0.0.1:9", extra="retries = 1\ntimeout = 2\n")
    capsys.readouterr()
    assert main(["--config", str(dead), "launch", "--patient", PATIENT]) == 2
    assert "print --patient" in capsys.readouterr().err


class FlakyCentre:
    """The data centre as the write-back sees it: the documents fail until `up` is set."""

    def __init__(self):
        self.up = False
        self.row = {"id": "0f8fad5b-d9cb-469f-a165-70867728950e", "patient_id": PATIENT, "revision": 1,
                    "status": "confirmed", "updated_at": "2022-09-26T10:00:00+09:00"}

    def feed(self, since):
        from connector.client import Unreachable

        if not self.up and since:
            raise Unreachable("データセンターに接続できません。")
        return [self.row] if not since else []

    def document(self, notification_id):
        from connector.client import Unreachable

        if not self.up:
            raise Unreachable("データセンターに接続できません。")
        return {"resourceType": "Bundle", "id": notification_id}

    def pdf(self, notification_id):
        return b"%PDF-1.4 stand-in"


def test_watch_keeps_a_local_queue_while_the_data_centre_is_unreachable(tmp_path):
    from connector.writeback import WriteBack

    centre, clock, logs = FlakyCentre(), [1000.0], []
    config = Config(url="https://dc.example", api_key="k", extended_root=tmp_path / "ext", state_dir=tmp_path / "st")
    writer = WriteBack(config, centre, log=logs.append, now=lambda: clock[0])
    assert writer.run_once() == (1, 0)  # listed, but the document could not be fetched: queued
    entry = writer.state["queue"][0]
    assert entry["attempts"] == 1 and entry["next_at"] > clock[0]
    # A restart keeps the queue (state on disk); before the backoff nothing is tried, the feed may be down too.
    writer = WriteBack(config, centre, log=logs.append, now=lambda: clock[0])
    assert writer.run_once() == (0, 0) and len(writer.state["queue"]) == 1
    centre.up = True
    clock[0] += 3600
    assert writer.run_once() == (0, 1) and writer.state["queue"] == []
    written = sorted(p.name for p in (tmp_path / "ext").rglob("*") if p.is_file())
    assert written == [f"{PATIENT}_20220926_HERSYS_{centre.row['id']}_r01.json",
                       f"{PATIENT}_20220926_HERSYS_{centre.row['id']}_r01.pdf"]
    assert any("再試行" in line for line in logs)


@pytest.mark.security
def test_watch_never_turns_a_hostile_feed_into_paths(tmp_path):
    from connector.writeback import WriteBack

    class Hostile(FlakyCentre):
        def feed(self, since):
            return [{"id": "../../etc", "patient_id": "../../../tmp", "revision": 1, "updated_at": "x"},
                    {"id": self.row["id"], "patient_id": "a/../../b", "revision": 1, "updated_at": "x"}]

    config = Config(url="https://dc.example", api_key="k", extended_root=tmp_path / "ext", state_dir=tmp_path / "st")
    writer = WriteBack(config, Hostile(), log=lambda m: None)
    assert writer.run_once() == (0, 0) and not (tmp_path / "ext").exists()


def test_print_renders_the_paper_form_from_the_local_extract_without_the_data_centre(tmp_path, capsys):
    config = _config(tmp_path, "http://127.0.0.1:9")  # nothing listens there: print must not need it
    out = tmp_path / "form.pdf"
    assert main(["--config", str(config), "print", "--patient", PATIENT, "--out", str(out)]) == 0
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 3000
    assert main(["--config", str(config), "print", "--patient", "../etc", "--out", str(out)]) == 1
    assert main(["--config", str(config), "print", "--patient", "9999999999", "--out", str(out)]) == 1
    assert "読めません" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_the_built_connector_is_installable_and_runs(live_server, settings, hospital, published, tmp_path):
    """`python -m connector.build` gives a folder an IT department copies to the DMZ; its command runs alone
    (only the pinned third-party packages are needed, no checkout, no Django)."""
    from connector.build import build

    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    bundle = build(tmp_path / "dist" / "hersys-connector", archive=True)
    assert bundle.name.endswith(".tar.gz") and bundle.exists()
    home = tmp_path / "dist" / "hersys-connector"
    assert {"hersys-connector", "hersys-connector.cmd", "requirements.txt", "connector.example.toml", "VERSION",
            "lib"} <= {p.name for p in home.iterdir()}
    assert not list((home / "lib").rglob("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    env["HERSYS_CONNECTOR_PYTHON"] = sys.executable
    work = tmp_path / "site"
    work.mkdir()
    config = _config(work, live_server.url)

    def run(*args):
        return subprocess.run([str(home / "hersys-connector"), "--config", str(config), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)

    helped = run("--help")
    assert helped.returncode == 0 and "launch" in helped.stdout and "watch" in helped.stdout
    launched = run("launch", "--patient", PATIENT, "--no-browser")
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout.strip().startswith(live_server.url + "/launch/")
    printed = run("print", "--patient", PATIENT, "--out", str(work / "form.pdf"))
    assert printed.returncode == 0, printed.stderr
    assert (work / "form.pdf").read_bytes().startswith(b"%PDF")
    # The bundle carries no Django code.
    assert not list((home / "lib").rglob("*django*")) and not (home / "lib" / "assist_portal").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_connector_push_and_pull(live_server, settings, hospital, physician, published, capsys, tmp_path,
                                 django_capture_on_commit_callbacks):
    """The older command line (no configuration file) keeps working; its push now sends items only."""
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    folder = DEMO_SAMPLES / "ss-mix2" / "110" / "000" / "1100000002"
    common = ["--url", live_server.url, "--api-key", "key-h0001"]
    assert main([*common, "push", "--format", "ss-mix2", str(folder)]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith(live_server.url + "/launch/")
    assert main(["--url", live_server.url, "--api-key", "wrong", "push", "--format", "ss-mix2", str(folder)]) == 1
    assert main([*common, "push", "--raw", "--format", "ss-mix2", str(folder)]) == 1  # raw: not allowed here
    from assist_portal.notifications import services
    from assist_portal.notifications.models import Extract

    extract = Extract.objects.get()
    n = services.notification_open_from_extract(extract, physician)
    values = dict(n.values, **{"report.diagnosis_class": "confirmed_patient"})
    with django_capture_on_commit_callbacks(execute=False):
        services.notification_confirm(n, physician, values, n.lock_version)
    assert main([*common, "pull", "--out", str(tmp_path)]) == 0
    names = sorted(p.suffix for p in tmp_path.iterdir())
    assert names == [".json", ".pdf"]


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
