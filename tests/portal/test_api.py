"""The connector API: authentication, validation and hostile input (clear errors, nothing lost, no crash)."""
import base64
import json

import pytest

from assist_portal.notifications.models import Extract

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.fixture(autouse=True)
def raw_pushes_allowed(hospital):
    """These tests feed hostile raw extracts to the data centre's parsers: the hospital allows raw pushes."""
    hospital.raw_push_enabled = True
    hospital.save(update_fields=["raw_push_enabled"])


def post(client, body, key="key-h0001", raw=None):
    return client.post("/api/v1/extracts", data=raw if raw is not None else json.dumps(body),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}")


def test_push_requires_a_valid_hospital_key(client, hospital):
    body = {"patient_id": "P1", "format": "fhir", "bundle": {"resourceType": "Bundle"}}
    assert client.post("/api/v1/extracts", data=json.dumps(body), content_type="application/json").status_code in (401, 403)
    assert post(client, body, key="wrong").status_code in (401, 403)


@pytest.mark.parametrize("body", [
    {},
    {"patient_id": "../../etc/passwd", "format": "fhir", "bundle": {}},
    {"patient_id": "P1", "format": "hl7v3", "bundle": {}},
    {"patient_id": "P1", "format": "fhir", "bundle": "not an object"},
    {"patient_id": "P1", "format": "ss-mix2", "files": [{"path": "/abs", "data_base64": "AA=="}]},
    {"patient_id": "P1", "format": "ss-mix2", "files": [{"path": "a/../../b", "data_base64": "AA=="}]},
    {"patient_id": "P1", "format": "ss-mix2", "files": [{"path": "a", "data_base64": "***"}]},
])
def test_bad_requests_get_clear_errors(client, hospital, body):
    response = post(client, body)
    assert response.status_code == 400
    assert Extract.objects.count() == 0


def test_malformed_json_is_a_clear_error(client, hospital):
    response = post(client, None, raw=b"{not json")
    assert response.status_code == 400


@pytest.mark.parametrize("payload", [
    b"MSH|^~\\&|\rPID|||||\x00\x01\x02",
    b"MSH|^~\\&|HIS|H0001\rPID|0001||X^^^^PI||<script>alert(1)</script>^^^^^^L^I",
    bytes(range(256)) * 100,
    b"\x1b$B" * 1000,
])
def test_hostile_hl7_never_crashes_the_push(client, hospital, published, payload):
    published("2021-03")
    body = {"patient_id": "P1", "format": "ss-mix2",
            "files": [{"path": "-/ADT-00/P1_-_ADT-00_-_20210108083000000_01_1",
                       "data_base64": base64.b64encode(payload).decode()}]}
    response = post(client, body)
    assert response.status_code == 201
    assert "launch_url" in response.json()


def test_hostile_fhir_never_crashes_the_push(client, hospital, published):
    published("2021-03")
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "name": [{"family": "<img src=x onerror=alert(1)>", "given": [None, 5]}], "birthDate": "not-a-date", "gender": ["x"]}}]}
    response = post(client, {"patient_id": "P2", "format": "fhir", "bundle": bundle})
    assert response.status_code == 201
    extract = Extract.objects.get()
    assert "patient.birth_date" not in extract.items


def test_huge_payload_is_refused_cleanly(client, hospital, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    big = {"patient_id": "P1", "format": "fhir", "bundle": {"resourceType": "Bundle", "x": "a" * 5000}}
    response = post(client, big)
    assert response.status_code in (400, 413)
    assert Extract.objects.count() == 0


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/extracts" in response.content


def test_dwh_csv_push_uses_the_hospitals_profile(client, hospital, published):
    from tests.conftest import DEMO_SAMPLES, ROOT

    published("2021-03")
    hospital.csv_profile = json.loads((ROOT / "demo" / "profiles" / "H0001.json").read_text(encoding="utf-8"))
    hospital.save(update_fields=["csv_profile"])
    raw = (DEMO_SAMPLES / "dwh" / "8800000101.csv").read_bytes()  # Shift_JIS, as DWH exports are
    response = post(client, {"patient_id": "8800000101", "format": "csv",
                             "csv_base64": base64.b64encode(raw).decode()})
    assert response.status_code == 201, response.content
    extract = Extract.objects.get()
    assert extract.items.get("patient.name") and extract.items.get("patient.birth_date")
    assert any(str(v).startswith("csv") for v in extract.provenance.values())


def test_central_admin_edits_mapping_tables_with_validation(client, hospital, central_admin, login):
    from django.urls import reverse

    from assist_portal.audit.models import AuditEvent

    login(client, central_admin)
    url = reverse("central:hospital-mapping", args=[hospital.pk])
    assert client.get(url).status_code == 200
    bad = client.post(url, {"local_codes": "[1,2]", "csv_profile": "{}"})
    assert bad.status_code == 400 and "保存できませんでした" in bad.content.decode()
    codes = dict(hospital.local_codes)
    codes["lab"] = dict(codes["lab"], L9999={"name": "SARS-CoV-2 新検査", "method": "pcr"})
    ok = client.post(url, {"local_codes": json.dumps(codes, ensure_ascii=False), "csv_profile": ""})
    assert ok.status_code == 302
    hospital.refresh_from_db()
    assert "L9999" in hospital.local_codes["lab"]
    assert AuditEvent.objects.filter(action="hospital.mapping_edit").exists()
